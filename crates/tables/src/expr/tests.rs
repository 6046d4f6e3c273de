//! Parser and evaluator tests, and a property test that no input makes the parsers panic.

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::number::Number;
use crate::value::{item_from_json, Item};

fn item(j: serde_json::Value) -> Item {
    item_from_json(&j).unwrap()
}

fn cond(text: &str, req: serde_json::Value) -> Result<Condition, crate::error::DbError> {
    let subs = Substitutions::new(&req)?;
    let c = parse_condition(text, ExprKind::Condition, &subs)?;
    subs.check_all_used()?;
    Ok(c)
}

fn eval(text: &str, req: serde_json::Value, it: &Item) -> bool {
    matches(&cond(text, req).unwrap(), it)
}

fn sample() -> Item {
    item(json!({
        "id": {"S": "a1"}, "n": {"N": "10"}, "s": {"S": "hello"}, "tags": {"SS": ["x", "y"]},
        "nums": {"NS": ["1", "2"]}, "arr": {"L": [{"S": "p"}, {"N": "2"}]},
        "m": {"M": {"child": {"M": {"deep": {"N": "5"}}}, "flag": {"BOOL": true}}}, "nothing": {"NULL": true}
    }))
}

#[test]
fn comparisons_and_precedence() {
    let it = sample();
    let v = |pairs: serde_json::Value| json!({"ExpressionAttributeValues": pairs});
    assert!(eval("n = :a", v(json!({":a": {"N": "10.0"}})), &it));
    assert!(eval("n <> :a", v(json!({":a": {"N": "11"}})), &it));
    assert!(eval(
        "n BETWEEN :a AND :b",
        v(json!({":a": {"N": "1"}, ":b": {"N": "10"}})),
        &it
    ));
    assert!(eval(
        "n IN (:a, :b)",
        v(json!({":a": {"N": "3"}, ":b": {"N": "10"}})),
        &it
    ));
    assert!(
        !eval("n < :a", v(json!({":a": {"S": "zzz"}})), &it),
        "different types never compare"
    );
    // AND binds tighter than OR; NOT tighter than AND.
    assert!(
        eval(
            "n = :x OR n = :t AND s = :x",
            v(json!({":x": {"N": "0"}, ":t": {"N": "10"}})),
            &it
        ) == false
    );
    assert!(eval(
        "(n = :x OR n = :t) AND NOT s = :y",
        v(json!({":x": {"N": "0"}, ":t": {"N": "10"}, ":y": {"S": "bye"}})),
        &it
    ));
    assert!(eval("absent <> :a", v(json!({":a": {"N": "1"}})), &it));
    assert!(!eval("absent = :a", v(json!({":a": {"N": "1"}})), &it));
}

#[test]
fn functions_and_paths() {
    let it = sample();
    let v = |pairs: serde_json::Value| json!({"ExpressionAttributeValues": pairs});
    assert!(eval(
        "attribute_exists(m.child.deep) AND attribute_not_exists(m.nope)",
        json!({}),
        &it
    ));
    assert!(eval(
        "attribute_type(nothing, :t)",
        v(json!({":t": {"S": "NULL"}})),
        &it
    ));
    assert!(eval("begins_with(s, :p)", v(json!({":p": {"S": "he"}})), &it));
    assert!(eval(
        "contains(s, :p) AND contains(tags, :t) AND contains(arr, :l)",
        v(json!({":p": {"S": "ell"}, ":t": {"S": "y"}, ":l": {"N": "2"}})),
        &it
    ));
    assert!(eval(
        "size(s) = :five AND size(tags) = :two AND size(arr) < :five",
        v(json!({":five": {"N": "5"}, ":two": {"N": "2"}})),
        &it
    ));
    assert!(eval(
        "arr[0] = :p AND m.child.deep > :n",
        v(json!({":p": {"S": "p"}, ":n": {"N": "4"}})),
        &it
    ));
    assert!(eval(
        "#n = :v",
        json!({"ExpressionAttributeNames": {"#n": "n"}, "ExpressionAttributeValues": {":v": {"N": "10"}}}),
        &it
    ));
}

#[test]
fn errors_name_the_problem() {
    let msg = |text: &str, req: serde_json::Value| cond(text, req).unwrap_err().message;
    assert_eq!(
        msg("name = :v", json!({"ExpressionAttributeValues": {":v": {"S": "x"}}})),
        "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: name"
    );
    assert_eq!(msg("a = :v", json!({})), "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :v");
    assert_eq!(msg("#a = :v", json!({"ExpressionAttributeValues": {":v": {"S": "x"}}})), "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #a");
    assert_eq!(
        msg(
            "a = :v",
            json!({"ExpressionAttributeValues": {":v": {"S": "x"}, ":w": {"S": "y"}}})
        ),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}"
    );
    assert!(msg("a = ", json!({})).starts_with("Invalid ConditionExpression: Syntax error; token: \"<EOF>\""));
    assert!(msg("a === :v", json!({"ExpressionAttributeValues": {":v": {"S": "x"}}})).contains("Syntax error"));
    assert!(msg("nope(a)", json!({})).contains("Invalid function name"));
    assert_eq!(
        msg("", json!({})),
        "Invalid ConditionExpression: The expression can not be empty;"
    );
}

fn update(text: &str, vals: serde_json::Value, it: &Item) -> Result<Item, crate::error::DbError> {
    let req = json!({"ExpressionAttributeValues": vals});
    let subs = Substitutions::new(&req)?;
    let actions = parse_update(text, &subs)?;
    apply_update(it, &actions, &["id"]).map(|o| o.item)
}

#[test]
fn update_expressions() {
    let it = sample();
    let out = update(
        "SET n = n + :one, s = if_not_exists(absent, :d), arr = list_append(arr, :more), m.child.added = :one REMOVE arr[0], tags ADD nums :ns, hits :one DELETE tags :x",
        json!({":one": {"N": "1"}, ":d": {"S": "dflt"}, ":more": {"L": [{"S": "q"}]}, ":ns": {"NS": ["3"]}, ":x": {"SS": ["x"]}}),
        &it,
    );
    // REMOVE tags and DELETE tags overlap: DynamoDB rejects that.
    let message = out.unwrap_err().message;
    assert!(message.contains("Two document paths overlap"), "{message}");

    let out = update(
        "SET n = n - :one, s = if_not_exists(absent, :d), arr = list_append(:more, arr), m.child.added = :one ADD nums :ns, hits :one DELETE tags :x",
        json!({":one": {"N": "1"}, ":d": {"S": "dflt"}, ":more": {"L": [{"S": "q"}]}, ":ns": {"NS": ["3"]}, ":x": {"SS": ["x"]}}),
        &it,
    )
    .unwrap();
    assert_eq!(out["n"], Value::N(Number::parse("9").unwrap()));
    assert_eq!(out["s"], Value::S("dflt".into()));
    assert_eq!(out["hits"], Value::N(Number::parse("1").unwrap()));
    assert_eq!(out["tags"], Value::SS(vec!["y".into()]));
    assert_eq!(
        out["nums"],
        Value::NS(["1", "2", "3"].iter().map(|s| Number::parse(s).unwrap()).collect())
    );
    let Value::L(arr) = &out["arr"] else { panic!() };
    assert_eq!(arr[0], Value::S("q".into()));
    let Value::M(m) = &out["m"] else { panic!() };
    let Value::M(inner) = &m["child"] else { panic!() };
    assert!(inner.contains_key("added"));

    assert!(
        Substitutions::new(&json!({"ExpressionAttributeValues": {}})).is_err(),
        "an empty values map is an error"
    );
    let req = json!({});
    let subs = Substitutions::new(&req).unwrap();
    let actions = parse_update("REMOVE arr[0], m.flag", &subs).unwrap();
    let out = apply_update(&it, &actions, &["id"]).unwrap().item;
    let Value::L(arr) = &out["arr"] else { panic!() };
    assert_eq!(arr.len(), 1);

    let err = update("SET id = :v", json!({":v": {"S": "x"}}), &it).unwrap_err();
    assert_eq!(
        err.message,
        "One or more parameter values were invalid: Cannot update attribute id. This attribute is part of the key"
    );
    let err = update("SET s = s + :v", json!({":v": {"N": "1"}}), &it).unwrap_err();
    assert_eq!(
        err.message,
        "An operand in the update expression has an incorrect data type"
    );
    let err = update("SET nope.deeper = :v", json!({":v": {"N": "1"}}), &it).unwrap_err();
    assert_eq!(
        err.message,
        "The document path provided in the update expression is invalid for update"
    );
}

#[test]
fn projections_keep_nested_structure() {
    let it = sample();
    let req = json!({"ExpressionAttributeNames": {"#m": "m"}});
    let subs = Substitutions::new(&req).unwrap();
    let paths = parse_projection("id, #m.child.deep, arr[1]", &subs).unwrap();
    let p = project(&it, &paths);
    assert_eq!(p.len(), 3);
    assert_eq!(
        crate::value::item_to_json(&p)["m"],
        json!({"M": {"child": {"M": {"deep": {"N": "5"}}}}})
    );
    assert_eq!(crate::value::item_to_json(&p)["arr"], json!({"L": [{"N": "2"}]}));
}

/// Runs `f` on a thread with a tokio worker's stack (2 MiB), where table requests are parsed.
fn on_worker_sized_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .expect("the parser overflowed or panicked");
}

fn assert_too_deep(result: Result<impl std::fmt::Debug, crate::error::DbError>) {
    let err = result.expect_err("nesting this deep must be refused");
    assert_eq!(err.kind, crate::error::ErrorKind::Validation, "{err:?}");
    assert!(err.message.contains("nested too deeply"), "{}", err.message);
}

#[test]
fn regression_2000_nested_parentheses_aborted_the_server() {
    on_worker_sized_stack(|| {
        let text = format!("{}a = :v{}", "(".repeat(2000), ")".repeat(2000));
        let req = json!({"ExpressionAttributeValues": {":v": {"N": "1"}}});
        let subs = Substitutions::new(&req).unwrap();
        for kind in [ExprKind::Condition, ExprKind::Filter, ExprKind::KeyCondition] {
            assert_too_deep(parse_condition(&text, kind, &subs));
        }
        let nots = format!("{}a = :v", "NOT ".repeat(1000));
        assert_too_deep(parse_condition(&nots, ExprKind::Filter, &subs));
        let appends = format!("SET a = {}:v{}", "list_append(:v,".repeat(200), ")".repeat(200));
        assert_too_deep(parse_update(&appends, &subs));
    });
}

#[test]
fn redundant_parentheses_and_repeated_operands_are_refused() {
    let req = json!({"ExpressionAttributeValues": {":v": {"N": "1"}}});
    let subs = Substitutions::new(&req).unwrap();
    let message = |text: &str| parse_condition(text, ExprKind::Condition, &subs).unwrap_err().message;
    assert_eq!(
        message("((a = :v))"),
        "Invalid ConditionExpression: The expression has redundant parentheses;"
    );
    assert!(parse_condition("(a = :v) AND ((a = :v) OR a = :v)", ExprKind::Condition, &subs).is_ok());
    assert_eq!(
        message("a.b[1] = a.b[1]"),
        "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a, b, [1]]"
    );
    assert!(message("contains(a, a)").contains("operator: contains"));
}

#[test]
fn nesting_up_to_the_limit_still_parses_and_evaluates() {
    on_worker_sized_stack(|| {
        let depth = crate::expr::parser::MAX_NESTING;
        // Each level holds more than the next one: parentheses directly inside parentheses
        // are redundant, which DynamoDB refuses.
        let text = format!("{}n = :v{}", "(n = :v AND ".repeat(depth), ")".repeat(depth));
        let req = json!({"ExpressionAttributeValues": {":v": {"N": "10"}}});
        let subs = Substitutions::new(&req).unwrap();
        let c = parse_condition(&text, ExprKind::Filter, &subs).unwrap();
        assert!(matches(&c, &sample()));
    });
}

proptest! {
    #[test]
    fn parsers_never_panic(text in "[ -~]{0,4200}") {
        let req = json!({
            "ExpressionAttributeNames": {"#a": "a", "#b": "b"},
            "ExpressionAttributeValues": {":v": {"N": "1"}, ":s": {"S": "x"}, ":l": {"L": []}}
        });
        let subs = Substitutions::new(&req).unwrap();
        let it = sample();
        if let Ok(c) = parse_condition(&text, ExprKind::Filter, &subs) {
            let _ = matches(&c, &it);
        }
        if let Ok(a) = parse_update(&text, &subs) {
            let _ = apply_update(&it, &a, &["id"]);
        }
        if let Ok(p) = parse_projection(&text, &subs) {
            let _ = project(&it, &p);
        }
    }

    #[test]
    fn expression_like_inputs_never_panic(parts in proptest::collection::vec(prop_oneof![
        Just("a"), Just("#a"), Just(":v"), Just(":s"), Just("="), Just("<>"), Just("<"), Just("("), Just(")"), Just(","),
        Just("AND"), Just("OR"), Just("NOT"), Just("BETWEEN"), Just("IN"), Just("size"), Just("["), Just("]"), Just("0"),
        Just("."), Just("SET"), Just("REMOVE"), Just("ADD"), Just("DELETE"), Just("+"), Just("-"), Just("if_not_exists"),
        Just("list_append"), Just("begins_with"), Just("attribute_exists"), Just("contains"),
    ], 0..400)) {
        let text = parts.join(" ");
        let req = json!({"ExpressionAttributeNames": {"#a": "a"}, "ExpressionAttributeValues": {":v": {"N": "1"}, ":s": {"S": "x"}}});
        let subs = Substitutions::new(&req).unwrap();
        let it = sample();
        if let Ok(c) = parse_condition(&text, ExprKind::Condition, &subs) {
            let _ = matches(&c, &it);
        }
        if let Ok(a) = parse_update(&text, &subs) {
            let _ = apply_update(&it, &a, &["id"]);
        }
    }

    #[test]
    fn number_parser_never_panics(text in "[-+0-9.eE]{0,50}") {
        let _ = Number::parse(&text);
    }
}
