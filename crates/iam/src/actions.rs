//! Which IAM actions on which resources an API call is, the way AWS authorizes them.

use serde_json::Value as Json;
use sylph_model::LOCAL_ACCOUNT_ID;

/// The table ARN as AWS writes it.
pub fn table_arn(region: &str, table: &str) -> String {
    format!("arn:aws:dynamodb:{region}:{LOCAL_ACCOUNT_ID}:table/{table}")
}

/// The table an ARN from [`dynamodb`] names (`…:table/NAME`, or `…:table/NAME/index/…`), or
/// `None` for `*`.
pub fn table_of_arn(arn: &str) -> Option<&str> {
    // The last `:table/`: table names hold neither `:` nor `/`, whatever else the ARN holds.
    let (_, rest) = arn.rsplit_once(":table/")?;
    Some(rest.split('/').next().unwrap_or(rest))
}

/// The function ARN as AWS writes it.
pub fn function_arn(region: &str, function: &str) -> String {
    format!("arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{function}")
}

/// The queue ARN as AWS writes it.
pub fn queue_arn(region: &str, queue: &str) -> String {
    format!("arn:aws:sqs:{region}:{LOCAL_ACCOUNT_ID}:{queue}")
}

/// The (action, resource) pair one SQS operation needs: the operation on its queue (`*` for
/// ListQueues, or when the call names no queue). The batch operations are authorized as their
/// single forms, as AWS does.
pub fn sqs(operation: &str, queue: Option<&str>, region: &str) -> Vec<(String, String)> {
    let action = match operation {
        "SendMessageBatch" => "SendMessage",
        "DeleteMessageBatch" => "DeleteMessage",
        "ChangeMessageVisibilityBatch" => "ChangeMessageVisibility",
        other => other,
    };
    let resource = match (operation, queue) {
        ("ListQueues", _) | (_, None) => "*".to_owned(),
        (_, Some(q)) => queue_arn(region, q),
    };
    vec![(format!("sqs:{action}"), resource)]
}

/// The (action, resource) pair one DynamoDB Streams operation needs: the operation on the
/// table's stream (`…:table/NAME/stream/*` matches it), or `*` when the call names no table.
pub fn dynamodb_streams(operation: &str, table: Option<&str>, region: &str) -> Vec<(String, String)> {
    let resource = match table {
        Some(t) => format!("{}/stream/local", table_arn(region, t)),
        None => "*".to_owned(),
    };
    vec![(format!("dynamodb:{operation}"), resource)]
}

/// Whether a DynamoDB operation acts on no table (its resource is `*`). Any other call whose
/// resource is `*` could not be read, and a caller limited to some tables is refused it.
pub fn names_no_table(operation: &str) -> bool {
    matches!(operation, "ListTables" | "DescribeLimits" | "DescribeEndpoints")
}

/// The (action, resource) pairs one DynamoDB operation needs. A body Sylph cannot read needs
/// the operation on `*`, so it is judged (and refused) like any other call.
pub fn dynamodb(operation: &str, body: &[u8], region: &str) -> Vec<(String, String)> {
    let action = |op: &str| format!("dynamodb:{op}");
    let Ok(json) = serde_json::from_slice::<Json>(body) else {
        return vec![(action(operation), "*".to_owned())];
    };
    let table = |name: &str| table_arn(region, name);
    let str_field = |v: &Json, k: &str| v.get(k).and_then(Json::as_str).map(str::to_owned);
    match operation {
        "ListTables" | "DescribeLimits" | "DescribeEndpoints" => vec![(action(operation), "*".to_owned())],
        // PartiQL is authorized per statement, as AWS does: `PartiQLSelect` and so on, on the
        // table (or the index a SELECT reads).
        "ExecuteStatement" | "BatchExecuteStatement" | "ExecuteTransaction" => {
            match sylph_tables::partiql::statement_targets(operation, &json) {
                Some(targets) => targets
                    .into_iter()
                    .map(|t| {
                        let resource = match &t.index {
                            Some(i) => format!("{}/index/{i}", table(&t.table)),
                            None => table(&t.table),
                        };
                        (action(t.action), resource)
                    })
                    .collect(),
                None => vec![(action(operation), "*".to_owned())],
            }
        }
        "BatchGetItem" | "BatchWriteItem" => match json.get("RequestItems").and_then(Json::as_object) {
            Some(items) if !items.is_empty() => items.keys().map(|t| (action(operation), table(t))).collect(),
            _ => vec![(action(operation), "*".to_owned())],
        },
        "TransactGetItems" | "TransactWriteItems" => {
            let mut out = Vec::new();
            for item in json.get("TransactItems").and_then(Json::as_array).into_iter().flatten() {
                for (kind, op) in [
                    ("Get", "GetItem"),
                    ("Put", "PutItem"),
                    ("Update", "UpdateItem"),
                    ("Delete", "DeleteItem"),
                    ("ConditionCheck", "ConditionCheckItem"),
                ] {
                    if let Some(t) = item.get(kind).and_then(|i| str_field(i, "TableName")) {
                        out.push((action(op), table(&t)));
                    }
                }
            }
            if out.is_empty() {
                out.push((action(operation), "*".to_owned()));
            }
            out
        }
        "TagResource" | "UntagResource" | "ListTagsOfResource" => {
            // Authorize on the table the service will act on, found the way the service finds
            // it, never on the ARN as sent: `…:table/mine:table/secret` names `secret` there.
            let arn = str_field(&json, "ResourceArn").unwrap_or_default();
            let name = arn
                .rsplit_once(":table/")
                .map(|(_, n)| n.split('/').next().unwrap_or(n))
                .unwrap_or("");
            let resource = if name.is_empty() { "*".to_owned() } else { table(name) };
            vec![(action(operation), resource)]
        }
        _ => {
            let resource = match (str_field(&json, "TableName"), str_field(&json, "IndexName")) {
                // Query and Scan on an index are authorized on the index's ARN.
                (Some(t), Some(i)) if matches!(operation, "Query" | "Scan") => format!("{}/index/{i}", table(&t)),
                (Some(t), _) => table(&t),
                (None, _) => "*".to_owned(),
            };
            vec![(action(operation), resource)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_of_an_arn_is_read_from_its_end_whatever_the_region_holds() {
        let crafted = "arn:aws:dynamodb:x:table/mine/:000000000000:table/victim";
        assert_eq!(table_of_arn(crafted), Some("victim"));
        assert_eq!(table_of_arn(&table_arn("us-east-1", "t")), Some("t"));
        assert_eq!(
            table_of_arn("arn:aws:dynamodb:us-east-1:0:table/t/index/by-date"),
            Some("t")
        );
        assert_eq!(table_of_arn("*"), None);
    }

    #[test]
    fn operations_map_to_actions_and_resources() {
        let r = "us-east-1";
        assert_eq!(
            dynamodb("Scan", br#"{"TableName":"t"}"#, r),
            vec![("dynamodb:Scan".to_owned(), table_arn(r, "t"))]
        );
        assert_eq!(
            dynamodb("Query", br#"{"TableName":"t","IndexName":"byDate"}"#, r),
            vec![(
                "dynamodb:Query".to_owned(),
                format!("{}/index/byDate", table_arn(r, "t"))
            )]
        );
        let batch = dynamodb("BatchWriteItem", br#"{"RequestItems":{"a":[],"b":[]}}"#, r);
        assert_eq!(batch.len(), 2);
        let tx = dynamodb(
            "TransactWriteItems",
            br#"{"TransactItems":[{"Put":{"TableName":"a"}},{"ConditionCheck":{"TableName":"b"}}]}"#,
            r,
        );
        assert_eq!(
            tx,
            vec![
                ("dynamodb:PutItem".to_owned(), table_arn(r, "a")),
                ("dynamodb:ConditionCheckItem".to_owned(), table_arn(r, "b"))
            ]
        );
        assert_eq!(dynamodb("ListTables", b"{}", r)[0].1, "*");
        // The ARN the table service will act on, not the one as sent.
        let tag = dynamodb(
            "TagResource",
            br#"{"ResourceArn":"arn:aws:dynamodb:us-east-1:000000000000:table/mine:table/secret/x"}"#,
            r,
        );
        assert_eq!(tag, vec![("dynamodb:TagResource".to_owned(), table_arn(r, "secret"))]);
        assert_eq!(
            dynamodb("DeleteTable", b"not json", r),
            vec![("dynamodb:DeleteTable".to_owned(), "*".to_owned())]
        );
    }

    /// PartiQL names its tables inside statements: each is authorized on the table the parser
    /// that runs it reads, whatever the text holds elsewhere.
    #[test]
    fn partiql_statements_are_authorized_on_the_tables_they_run_on() {
        let r = "us-east-1";
        let select = dynamodb(
            "ExecuteStatement",
            br#"{"Statement":"SELECT * FROM \"secret\" WHERE note = 'FROM \"mine\"'"}"#,
            r,
        );
        assert_eq!(
            select,
            vec![("dynamodb:PartiQLSelect".to_owned(), table_arn(r, "secret"))]
        );
        let index = dynamodb(
            "ExecuteStatement",
            br#"{"Statement":"SELECT a FROM t.byA WHERE a = 1"}"#,
            r,
        );
        assert_eq!(
            index,
            vec![(
                "dynamodb:PartiQLSelect".to_owned(),
                format!("{}/index/byA", table_arn(r, "t"))
            )]
        );
        let batch = dynamodb(
            "BatchExecuteStatement",
            br#"{"Statements":[{"Statement":"INSERT INTO mine VALUE {'pk': ?}","Parameters":[{"S":"a"}]},
                               {"Statement":"DELETE FROM secret WHERE pk = 'a'"}]}"#,
            r,
        );
        assert_eq!(
            batch,
            vec![
                ("dynamodb:PartiQLInsert".to_owned(), table_arn(r, "mine")),
                ("dynamodb:PartiQLDelete".to_owned(), table_arn(r, "secret"))
            ]
        );
        let tx = dynamodb(
            "ExecuteTransaction",
            br#"{"TransactStatements":[{"Statement":"UPDATE secret SET a = 1 WHERE pk = 'x'"}]}"#,
            r,
        );
        assert_eq!(tx, vec![("dynamodb:PartiQLUpdate".to_owned(), table_arn(r, "secret"))]);
        // A statement that cannot be read names no table: refused to a caller limited to some.
        let unreadable = dynamodb("ExecuteStatement", br#"{"Statement":"SELECT * FROM"}"#, r);
        assert_eq!(
            unreadable,
            vec![("dynamodb:ExecuteStatement".to_owned(), "*".to_owned())]
        );
        assert!(!names_no_table("ExecuteStatement") && names_no_table("ListTables"));
    }
}
