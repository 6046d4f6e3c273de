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
    // Sets hold scalars, but a nested one is parsed before it is refused.
    let bags = format!("SELECT * FROM t WHERE a = {}1", "<<".repeat(4000));
    assert!(bags.len() < 8192, "within the statement limit, so the parser sees it");
    assert!(parse(&bags, &[]).is_err());
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

proptest::proptest! {
    #[test]
    fn any_text_parses_or_is_refused(text in "[ -~]{0,600}") {
        let _ = parse(&text, &[s("a")]);
    }

    #[test]
    fn statement_like_inputs_never_panic(parts in proptest::collection::vec(proptest::prop_oneof![
        proptest::strategy::Just("SELECT"), proptest::strategy::Just("*"), proptest::strategy::Just("FROM"),
        proptest::strategy::Just("\"t\""), proptest::strategy::Just("WHERE"), proptest::strategy::Just("pk"),
        proptest::strategy::Just("="), proptest::strategy::Just("?"), proptest::strategy::Just("AND"),
        proptest::strategy::Just("OR"), proptest::strategy::Just("NOT"), proptest::strategy::Just("("),
        proptest::strategy::Just(")"), proptest::strategy::Just("["), proptest::strategy::Just("]"),
        proptest::strategy::Just("{"), proptest::strategy::Just("}"), proptest::strategy::Just("<<"),
        proptest::strategy::Just(">>"), proptest::strategy::Just("'x'"), proptest::strategy::Just("1"),
        proptest::strategy::Just(","), proptest::strategy::Just(":"), proptest::strategy::Just("INSERT"),
        proptest::strategy::Just("INTO"), proptest::strategy::Just("VALUE"), proptest::strategy::Just("UPDATE"),
        proptest::strategy::Just("SET"), proptest::strategy::Just("REMOVE"), proptest::strategy::Just("DELETE"),
        proptest::strategy::Just("IS"), proptest::strategy::Just("MISSING"), proptest::strategy::Just("BETWEEN"),
        proptest::strategy::Just("IN"), proptest::strategy::Just("size"), proptest::strategy::Just("."),
        proptest::strategy::Just("RETURNING"), proptest::strategy::Just("ALL"), proptest::strategy::Just("NEW"),
    ], 0..300)) {
        let text = parts.join(" ");
        let item: crate::value::Item = [("pk".to_owned(), s("k")), ("n".to_owned(), Value::Bool(true))].into_iter().collect();
        for n in 0..3 {
            let params = vec![s("k"); n];
            if let Ok(Statement::Update { actions, filter, .. }) = parse(&text, &params) {
                let _ = crate::expr::matches(&filter, &item);
                let _ = crate::expr::apply_update(&item, &actions, &["pk"]);
            }
        }
    }
}

/// Paging with NextToken reads every item of a partition once, in order; a token from another
/// partition's statement is refused rather than starting the read somewhere else.
#[tokio::test]
async fn next_token_pages_through_a_partition_and_stays_in_it() {
    use serde_json::json;
    let dir = std::env::temp_dir().join(format!("sylph-partiql-pages-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let tables = crate::Tables::open(&dir, "us-east-1").unwrap();
    let call = |op: &'static str, body: serde_json::Value| {
        let tables = tables.clone();
        async move { tables.handle(op, body.to_string().as_bytes()).await }
    };
    let (status, _) = call(
        "CreateTable",
        json!({"TableName": "pages", "BillingMode": "PAY_PER_REQUEST",
               "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
               "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]}),
    )
    .await;
    assert_eq!(status, 200);
    for (pk, sk) in [("a", 1), ("a", 2), ("a", 3), ("b", 1)] {
        let statement = format!("INSERT INTO pages VALUE {{'pk': '{pk}', 'sk': {sk}}}");
        let (status, answer) = call("ExecuteStatement", json!({ "Statement": statement })).await;
        assert_eq!(status, 200, "{answer}");
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = json!({"Statement": "SELECT sk FROM pages WHERE pk = 'a'", "Limit": 2});
        if let Some(t) = &token {
            req["NextToken"] = json!(t);
        }
        let (status, answer) = call("ExecuteStatement", req).await;
        assert_eq!(status, 200, "{answer}");
        for item in answer["Items"].as_array().unwrap() {
            seen.push(item["sk"]["N"].as_str().unwrap().to_owned());
        }
        match answer.get("NextToken").and_then(|t| t.as_str()) {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["1", "2", "3"]);
    let (_, first) = call(
        "ExecuteStatement",
        json!({"Statement": "SELECT * FROM pages WHERE pk = 'a'", "Limit": 1}),
    )
    .await;
    let foreign = first["NextToken"].as_str().unwrap().to_owned();
    let (status, answer) = call(
        "ExecuteStatement",
        json!({"Statement": "SELECT * FROM pages WHERE pk = 'b'", "NextToken": foreign}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["message"], "Invalid NextToken");
    let _ = std::fs::remove_dir_all(&dir);
}
