//! Evaluating a role's statements for one action on one resource, as IAM does for
//! identity-based policies: an explicit Deny wins, then any Allow, otherwise denied.

use sylph_model::{IamStatement, Role};

/// The outcome for one action on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'r> {
    Allowed,
    /// A Deny statement matched (its origin, for the log).
    ExplicitDeny(&'r str),
    /// No statement allows it.
    ImplicitDeny,
}

pub fn evaluate<'r>(role: &'r Role, action: &str, resource: &str) -> Decision<'r> {
    let mut allowed = false;
    for st in &role.statements {
        if !matches_statement(st, action, resource) {
            continue;
        }
        if !st.allow {
            return Decision::ExplicitDeny(&st.origin);
        }
        allowed = true;
    }
    if allowed {
        Decision::Allowed
    } else {
        Decision::ImplicitDeny
    }
}

fn matches_statement(st: &IamStatement, action: &str, resource: &str) -> bool {
    // Action names are case-insensitive in IAM; ARNs are not.
    let action_listed = st.actions.iter().any(|p| wildcard_match(p, action, true));
    let resource_listed = st.resources.iter().any(|p| wildcard_match(p, resource, false));
    action_listed != st.not_action && resource_listed != st.not_resource
}

/// IAM's wildcards: `*` any run of characters, `?` any one character.
pub fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    // Iterative matching with one backtrack point: linear in practice, never recursive.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || (p[pi] != b'*' && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(allow: bool, actions: &[&str], resources: &[&str]) -> IamStatement {
        IamStatement {
            allow,
            actions: actions.iter().map(|s| (*s).to_owned()).collect(),
            not_action: false,
            resources: resources.iter().map(|s| (*s).to_owned()).collect(),
            not_resource: false,
            origin: "test".into(),
        }
    }

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/todo-dev";

    #[test]
    fn wildcards() {
        assert!(wildcard_match("dynamodb:Get*", "dynamodb:GetItem", true));
        assert!(wildcard_match("DynamoDB:getitem", "dynamodb:GetItem", true));
        assert!(!wildcard_match("dynamodb:Get*", "dynamodb:Scan", true));
        assert!(wildcard_match("arn:aws:dynamodb:*:*:table/todo-*", TABLE, false));
        assert!(!wildcard_match("arn:aws:dynamodb:*:*:table/TODO-*", TABLE, false));
        assert!(wildcard_match("arn:aws:dynamodb:us-east-?:*:table/*", TABLE, false));
        assert!(wildcard_match("*", "", false));
        assert!(!wildcard_match("a*b*c", "aXbY", false));
        assert!(wildcard_match(&"*a".repeat(50), &"a".repeat(60), false));
    }

    #[test]
    fn deny_wins_then_allow_then_nothing() {
        let role = Role {
            name: "r".into(),
            statements: vec![
                st(true, &["dynamodb:*"], &["arn:aws:dynamodb:*:*:table/todo-*"]),
                st(false, &["dynamodb:DeleteTable"], &["*"]),
            ],
        };
        assert_eq!(evaluate(&role, "dynamodb:Scan", TABLE), Decision::Allowed);
        assert_eq!(
            evaluate(&role, "dynamodb:DeleteTable", TABLE),
            Decision::ExplicitDeny("test")
        );
        assert_eq!(
            evaluate(
                &role,
                "dynamodb:Scan",
                "arn:aws:dynamodb:us-east-1:000000000000:table/other"
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(evaluate(&role, "lambda:InvokeFunction", TABLE), Decision::ImplicitDeny);
    }

    #[test]
    fn not_action_and_not_resource() {
        let mut s = st(true, &["dynamodb:DeleteTable"], &["arn:aws:dynamodb:*:*:table/secret"]);
        s.not_action = true;
        s.not_resource = true;
        let role = Role {
            name: "r".into(),
            statements: vec![s],
        };
        assert_eq!(evaluate(&role, "dynamodb:Scan", TABLE), Decision::Allowed);
        assert_eq!(evaluate(&role, "dynamodb:DeleteTable", TABLE), Decision::ImplicitDeny);
        assert_eq!(
            evaluate(
                &role,
                "dynamodb:Scan",
                "arn:aws:dynamodb:us-east-1:000000000000:table/secret"
            ),
            Decision::ImplicitDeny
        );
    }
}
