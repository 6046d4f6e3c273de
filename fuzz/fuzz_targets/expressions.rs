//! Condition, filter, key-condition, update and projection expressions: parse anything, and
//! evaluate or apply whatever parses, against an item with every kind of value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sylph_tables::expr::{apply_update, matches, parse_condition, parse_projection, parse_update, project, ExprKind, Substitutions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let request = serde_json::json!({
        "ExpressionAttributeNames": {"#a": "a", "#b": "b", "#n": "n"},
        "ExpressionAttributeValues": {
            ":v": {"N": "1"}, ":s": {"S": "x"}, ":l": {"L": [{"N": "1"}]}, ":m": {"M": {"k": {"S": "v"}}},
            ":ss": {"SS": ["a", "b"]}, ":b": {"BOOL": true}, ":z": {"NULL": true}
        }
    });
    let Ok(subs) = Substitutions::new(&request) else { return };
    let item = sylph_tables::value::item_from_json(&serde_json::json!({
        "id": {"S": "k"}, "n": {"N": "10"}, "a": {"L": [{"S": "p"}, {"M": {"b": {"N": "2"}}}]},
        "b": {"M": {"c": {"SS": ["x"]}, "d": {"BOOL": false}}}, "s": {"S": "hello"}, "z": {"NULL": true}
    }))
    .expect("a valid item");
    for kind in [ExprKind::Condition, ExprKind::Filter, ExprKind::KeyCondition] {
        if let Ok(c) = parse_condition(text, kind, &subs) {
            let _ = matches(&c, &item);
        }
    }
    if let Ok(actions) = parse_update(text, &subs) {
        let _ = apply_update(&item, &actions, &["id"]);
    }
    if let Ok(paths) = parse_projection(text, &subs) {
        let _ = project(&item, &paths);
    }
});
