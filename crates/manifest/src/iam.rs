//! The IAM role of each function: `provider.iam.role.statements` (or the older
//! `iamRoleStatements`), or a role named by `provider.iam.role` / a function's `role:` that is
//! an `AWS::IAM::Role` resource of this file. Statements keep their `Action` patterns and get
//! their `Resource` ARNs resolved (`Fn::GetAtt`, `Fn::Sub`, `${…}` already done), so Sylph can
//! check every call a function makes into it as AWS would.

use std::sync::Arc;

use serde_json::Value as Json;
use sylph_model::{IamStatement, Role};

use crate::cfn::Stack;
use crate::error::Problem;
use crate::yaml::{Mark, Node};

/// Where a role comes from, before it is resolved against the stack.
pub(crate) enum RoleSource {
    /// Statements written in the manifest, with where they are.
    Statements {
        name: String,
        json: Json,
        mark: Mark,
        path: String,
    },
    /// `role:` naming something: a logical id, `Fn::GetAtt: [Id, Arn]`, or an ARN.
    Reference {
        json: Json,
        mark: Mark,
        path: String,
    },
    None,
}

/// The role the provider gives every function.
pub(crate) fn provider_role(provider: Option<&Node>, default_name: String) -> RoleSource {
    let Some(provider) = provider else {
        return RoleSource::None;
    };
    let iam_role = provider.get("iam").and_then(|i| i.get("role"));
    if let Some(role) = iam_role {
        if let Some(statements) = role.get("statements") {
            let name = role
                .get("name")
                .and_then(|n| n.to_json().as_str().map(str::to_owned))
                .unwrap_or(default_name);
            return RoleSource::Statements {
                name,
                json: statements.to_json(),
                mark: statements.mark,
                path: "provider.iam.role.statements".into(),
            };
        }
        if !matches!(role.to_json(), Json::Object(ref m) if !m.contains_key("Fn::GetAtt") && !m.contains_key("Ref")) {
            return RoleSource::Reference {
                json: role.to_json(),
                mark: role.mark,
                path: "provider.iam.role".into(),
            };
        }
    }
    if let Some(statements) = provider.get("iamRoleStatements") {
        return RoleSource::Statements {
            name: default_name,
            json: statements.to_json(),
            mark: statements.mark,
            path: "provider.iamRoleStatements".into(),
        };
    }
    if let Some(role) = provider.get("role") {
        return RoleSource::Reference {
            json: role.to_json(),
            mark: role.mark,
            path: "provider.role".into(),
        };
    }
    RoleSource::None
}

/// A function's own `role:`, or its own `iamRoleStatements` (serverless-iam-roles-per-function:
/// a role of its own, with the provider's statements too when `iamRoleStatementsInherit` is
/// true), if it has one.
pub(crate) fn function_role(function: &Node, path: &str, provider: &RoleSource, role_name: String) -> RoleSource {
    if let Some(own) = function.get("iamRoleStatements") {
        let mut json = own.to_json();
        let inherit = function
            .get("iamRoleStatementsInherit")
            .is_some_and(|n| n.to_json() == Json::Bool(true));
        if let (
            true,
            RoleSource::Statements {
                json: Json::Array(inherited),
                ..
            },
            Json::Array(list),
        ) = (inherit, provider, &mut json)
        {
            list.extend(inherited.iter().cloned());
        }
        return RoleSource::Statements {
            name: role_name,
            json,
            mark: own.mark,
            path: format!("{path}.iamRoleStatements"),
        };
    }
    match function.get("role") {
        Some(role) => RoleSource::Reference {
            json: role.to_json(),
            mark: role.mark,
            path: format!("{path}.role"),
        },
        None => RoleSource::None,
    }
}

/// Resolve a role source into the model's role; `notices` collects what Sylph cannot check.
pub(crate) fn resolve(
    source: &RoleSource,
    stack: &Stack<'_>,
    notices: &mut Vec<String>,
) -> Result<Option<Arc<Role>>, Problem> {
    match source {
        RoleSource::None => Ok(None),
        RoleSource::Statements { name, json, mark, path } => {
            let statements = statements(json, *mark, path, stack, notices)?;
            Ok(Some(Arc::new(Role {
                name: name.clone(),
                statements,
            })))
        }
        RoleSource::Reference { json, mark, path } => {
            let logical_id = match json {
                Json::String(s) if !s.starts_with("arn:") => Some(s.clone()),
                Json::Object(m) => match m.get("Fn::GetAtt") {
                    Some(Json::Array(a)) => a.first().and_then(Json::as_str).map(str::to_owned),
                    Some(Json::String(s)) => s.split('.').next().map(str::to_owned),
                    _ => m.get("Ref").and_then(Json::as_str).map(str::to_owned),
                },
                _ => None,
            };
            let resource = logical_id.as_deref().and_then(|id| stack.resources.get(id));
            let Some(resource) = resource.filter(|r| r.get("Type").and_then(Json::as_str) == Some("AWS::IAM::Role"))
            else {
                notices.push(format!(
                    "{path}: the role is defined outside this file, so Sylph cannot read its policies; calls into Sylph are not checked against it"
                ));
                return Ok(None);
            };
            let id = logical_id.unwrap_or_default();
            let props = resource.get("Properties");
            let name = props
                .and_then(|p| p.get("RoleName"))
                .and_then(|n| stack.resolve(n))
                .unwrap_or_else(|| id.clone());
            let mut out = Vec::new();
            let policies = props.and_then(|p| p.get("Policies")).and_then(Json::as_array);
            for (i, policy) in policies.into_iter().flatten().enumerate() {
                let statement = policy.get("PolicyDocument").and_then(|d| d.get("Statement"));
                if let Some(st) = statement {
                    let at = format!("resources.Resources.{id}.Properties.Policies[{i}].PolicyDocument.Statement");
                    out.extend(statements(st, *mark, &at, stack, notices)?);
                }
            }
            Ok(Some(Arc::new(Role { name, statements: out })))
        }
    }
}

fn statements(
    json: &Json,
    mark: Mark,
    path: &str,
    stack: &Stack<'_>,
    notices: &mut Vec<String>,
) -> Result<Vec<IamStatement>, Problem> {
    let items: Vec<&Json> = match json {
        Json::Array(a) => a.iter().collect(),
        Json::Object(_) => vec![json],
        Json::Null => Vec::new(),
        _ => {
            return Err(Problem::new(mark, path.to_owned(), "expected a list of IAM statements")
                .help("each statement has Effect, Action and Resource"))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let problem = |message: String| {
            Problem::new(mark, at.clone(), message)
                .help("a statement looks like {Effect: Allow, Action: [dynamodb:GetItem], Resource: <table ARN>}")
        };
        let Json::Object(st) = item else {
            return Err(problem("expected a mapping".into()));
        };
        let allow = match st.get("Effect").and_then(Json::as_str) {
            Some("Allow") => true,
            Some("Deny") => false,
            other => return Err(problem(format!("Effect must be Allow or Deny, found {other:?}"))),
        };
        let (actions, not_action) = match (st.get("Action"), st.get("NotAction")) {
            (Some(a), None) => (
                string_list(a).ok_or_else(|| problem("Action must be a string or a list of strings".into()))?,
                false,
            ),
            (None, Some(a)) => (
                string_list(a).ok_or_else(|| problem("NotAction must be a string or a list of strings".into()))?,
                true,
            ),
            _ => return Err(problem("a statement needs exactly one of Action and NotAction".into())),
        };
        let (raw, not_resource) = match (st.get("Resource"), st.get("NotResource")) {
            (Some(r), None) => (r, false),
            (None, Some(r)) => (r, true),
            _ => {
                return Err(problem(
                    "a statement needs exactly one of Resource and NotResource".into(),
                ))
            }
        };
        let raw: Vec<&Json> = match raw {
            Json::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let mut resources = Vec::with_capacity(raw.len());
        let mut unresolved = false;
        for r in raw {
            match stack.resolve(r) {
                Some(arn) => resources.push(arn),
                None => {
                    unresolved = true;
                    notices.push(format!(
                        "{at}: cannot resolve the resource {} locally",
                        serde_json::to_string(r).unwrap_or_default()
                    ));
                }
            }
        }
        // What Sylph cannot resolve must never widen a grant: it matches nothing in an Allow's
        // Resource, everything in a Deny's Resource, and an Allow's NotResource is dropped.
        if unresolved {
            match (allow, not_resource) {
                (true, false) | (false, true) => {}
                (false, false) => resources.push("*".to_owned()),
                (true, true) => {
                    notices.push(format!(
                        "{at}: this Allow statement is ignored (its NotResource is not fully known)"
                    ));
                    continue;
                }
            }
        }
        if st.contains_key("Condition") {
            if allow {
                notices.push(format!(
                    "{at}: Sylph does not evaluate IAM conditions; this Allow statement grants nothing"
                ));
                continue;
            }
            notices.push(format!(
                "{at}: Sylph does not evaluate IAM conditions; this Deny statement always applies"
            ));
        }
        out.push(IamStatement {
            allow,
            actions,
            not_action,
            resources,
            not_resource,
            origin: at,
        });
    }
    Ok(out)
}

fn string_list(json: &Json) -> Option<Vec<String>> {
    match json {
        Json::String(s) => Some(vec![s.clone()]),
        Json::Array(a) => a.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}
