use super::parser::{parse, Returning, Statement};
use crate::expr::{Comparator, Condition, Operand, PathElem, UpdateAction};
use crate::value::Value;

fn s(v: &str) -> Value {
    Value::S(v.into())
}

#[test]
fn parses_each_statement_kind() {
    let stmt = parse(r#"SELECT a, "b".c FROM "t"."byC" WHERE pk = ? AND a > 3"#, &[s("x")]).unwrap();
    let Statement::Select {
        target,
        projection,
        filter,
        ..
    } = stmt
    else {
        panic!("not a select")
    };
    assert_eq!(target.table, "t");
    assert_eq!(target.index.as_deref(), Some("byC"));
    assert_eq!(projection.unwrap().len(), 2);
    assert!(matches!(filter, Some(Condition::And(..))));

    let stmt = parse(
        "INSERT INTO t VALUE {'pk': ?, 'n': 1, 'l': [1, 'a'], 's': <<'x', 'y'>>}",
        &[s("k")],
    )
    .unwrap();
    let Statement::Insert { item, .. } = stmt else {
        panic!("not an insert")
    };
    assert_eq!(item["pk"], s("k"));
    assert!(matches!(item["s"], Value::SS(ref v) if v.len() == 2));

    let stmt = parse(
        "UPDATE t SET a = a + 1, b = 'x' REMOVE c WHERE pk = 'k' RETURNING ALL NEW *",
        &[],
    )
    .unwrap();
    let Statement::Update { actions, returning, .. } = stmt else {
        panic!("not an update")
    };
    assert_eq!(actions.len(), 3);
    assert!(matches!(actions[2], UpdateAction::Remove(_)));
    assert_eq!(returning, Returning::AllNew);

    let stmt = parse("delete from t where 'k' = pk", &[]).unwrap();
    let Statement::Delete { filter, .. } = stmt else {
        panic!("not a delete")
    };
    assert!(matches!(
        filter,
        Condition::Compare(Operand::Value(_), Comparator::Eq, Operand::Path(_))
    ));
}

#[test]
fn refuses_what_dynamodb_refuses() {
    let message = |text: &str, params: &[Value]| parse(text, params).unwrap_err().message;
    assert!(message("SELEC * FROM t", &[]).starts_with("Statement wasn't well formed"));
    assert!(message("SELECT * FROM t WHERE", &[]).starts_with("Statement wasn't well formed"));
    assert_eq!(
        message("SELECT * FROM t WHERE pk = ?", &[]),
        "Number of parameters in request and statement don't match."
    );
    assert_eq!(
        message("SELECT * FROM t WHERE pk = 'a'", &[s("extra")]),
        "Number of parameters in request and statement don't match."
    );
    assert_eq!(
        message("SELECT * FROM t WHERE nope(a)", &[]),
        "Unrecognized function: nope"
    );
    assert!(message("INSERT INTO t VALUE {'a': 1, 'a': 2}", &[]).contains("Duplicate"));
    assert!(message("INSERT INTO t VALUE <<1, 'a'>>", &[]).contains("set"));
    assert!(message("SELECT * FROM t WHERE a = 'unterminated", &[]).contains("unterminated"));
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let deep = format!("SELECT * FROM t WHERE {}a = 1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(parse(&deep, &[]).is_err());
    let deep_list = format!(
        "INSERT INTO t VALUE {{'pk': {}1{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    assert!(parse(&deep_list, &[]).is_err());
    let nots = format!("SELECT * FROM t WHERE {} a = 1", "NOT ".repeat(5000));
    assert!(parse(&nots, &[]).is_err());
}

#[test]
fn paths_with_indexes_and_quoted_names() {
    let stmt = parse(r#"SELECT "odd name".x[2] FROM t"#, &[]).unwrap();
    let Statement::Select { projection, .. } = stmt else {
        panic!()
    };
    assert_eq!(
        projection.unwrap()[0],
        vec![
            PathElem::Name("odd name".into()),
            PathElem::Name("x".into()),
            PathElem::Index(2)
        ]
    );
}
