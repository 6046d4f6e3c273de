//! PartiQL statements: parse anything (with parameters of every type), and evaluate a parsed
//! statement's condition or apply its update against an item with every kind of value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sylph_tables::expr::{apply_update, matches, project_leaves};
use sylph_tables::partiql::{parse, Statement};
use sylph_tables::value::{item_from_json, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let params: Vec<Value> = [
        serde_json::json!({"S": "k"}),
        serde_json::json!({"N": "1"}),
        serde_json::json!({"L": [{"N": "1"}]}),
        serde_json::json!({"BOOL": true}),
    ]
    .iter()
    .map(|j| Value::from_json(j).expect("a valid value"))
    .collect();
    let item = item_from_json(&serde_json::json!({
        "pk": {"S": "k"}, "n": {"N": "10"}, "a": {"L": [{"S": "p"}, {"M": {"b": {"N": "2"}}}]},
        "b": {"M": {"c": {"SS": ["x"]}, "d": {"BOOL": false}}}, "s": {"S": "hello"}, "z": {"NULL": true}
    }))
    .expect("a valid item");
    // Any number of the parameters: a count that does not match is an error, never a panic.
    for n in 0..=params.len() {
        match parse(text, &params[..n]) {
            Ok(Statement::Select { filter, projection, .. }) => {
                if let Some(f) = filter {
                    let _ = matches(&f, &item);
                }
                if let Some(p) = projection {
                    let _ = project_leaves(&item, &p);
                }
            }
            Ok(Statement::Update { actions, filter, .. }) => {
                let _ = matches(&filter, &item);
                let _ = apply_update(&item, &actions, &["pk"]);
            }
            Ok(Statement::Delete { filter, .. }) => {
                let _ = matches(&filter, &item);
            }
            Ok(Statement::Insert { .. }) | Err(_) => {}
        }
    }
});
