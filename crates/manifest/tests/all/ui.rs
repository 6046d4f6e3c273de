//! Snapshot tests: each `tests/ui/NAME.yml` must fail to load with exactly the message in
//! `tests/ui/NAME.err`. Run with `UPDATE_SNAPSHOTS=1` to rewrite the `.err` files.

use std::collections::HashMap;
use std::path::Path;

use sylph_manifest::Context;

#[test]
fn bad_manifests_print_the_expected_errors() {
    let dir = Path::new("tests/ui");
    let mut cases: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 10,
        "expected the ui cases to be present, found {}",
        cases.len()
    );
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut failures = Vec::new();
    for case in cases {
        let ctx = Context {
            options: HashMap::new(),
            env: HashMap::from([("SET_VAR".to_owned(), "set".to_owned())]),
            service_dir: dir.to_owned(),
            params: Default::default(),
            dotenv: Vec::new(),
        };
        let actual = match sylph_manifest::load(&case, &ctx) {
            Ok(_) => "loaded without error".to_owned(),
            Err(e) => e.to_string(),
        };
        let expected_path = case.with_extension("err");
        if update {
            std::fs::write(&expected_path, format!("{actual}\n")).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected.trim_end() != actual {
            failures.push(format!(
                "{}:\n--- expected\n{}\n--- actual\n{actual}\n",
                case.display(),
                expected.trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
