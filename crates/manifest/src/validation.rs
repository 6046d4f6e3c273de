//! `request:` on an `http` event: the JSON Schemas a body must match (`schemas`, or the older
//! `schema`) and the parameters that must be present (`parameters.querystrings`, `headers`,
//! `paths` set to `true` or `{ required: true }`), which API Gateway's request validator checks.

use sylph_model::RequestValidation;

use crate::build::{field, At};
use crate::error::Problem;
use crate::yaml::Value;

pub(crate) fn request_validation(at: At<'_, '_>) -> Result<Option<RequestValidation>, Problem> {
    at.entries()?;
    let mut out = RequestValidation::default();
    for key in ["schemas", "schema"] {
        let Some(node) = field(at.node, key) else { continue };
        let path = format!("{}.{key}", at.path);
        for (content_type, schema) in (At { node, path: &path }).entries()? {
            let schema_path = format!("{path}.{content_type}");
            let schema_at = At {
                node: schema,
                path: &schema_path,
            };
            // `{ schema: {...}, name, description }`, or the schema itself.
            let body = match field(schema, "schema") {
                Some(inner)
                    if field(schema, "name").is_some()
                        || field(schema, "description").is_some()
                        || schema_at.entries()?.len() == 1 =>
                {
                    inner.to_json()
                }
                _ => schema.to_json(),
            };
            let body = match body {
                serde_json::Value::String(text) => serde_json::from_str(&text)
                    .map_err(|e| schema_at.problem(format!("the schema is not JSON: {e}")))?,
                other => other,
            };
            if !body.is_object() {
                return Err(schema_at.expected("a JSON Schema (a mapping)"));
            }
            if let Err(e) = jsonschema::draft4::new(&body) {
                return Err(schema_at.problem(format!("not a valid JSON Schema: {e}")));
            }
            out.schemas.push((content_type.to_ascii_lowercase(), body));
        }
    }
    if let Some(params) = field(at.node, "parameters") {
        let path = format!("{}.parameters", at.path);
        for (kind, list) in (At {
            node: params,
            path: &path,
        })
        .entries()?
        {
            let list_path = format!("{path}.{kind}");
            let target = match kind.as_str() {
                "querystrings" => &mut out.required_query,
                "headers" => &mut out.required_headers,
                "paths" => &mut out.required_paths,
                other => {
                    return Err(At {
                        node: list,
                        path: &list_path,
                    }
                    .problem(format!("`{other}` is not a kind of request parameter"))
                    .help("use querystrings, headers or paths"))
                }
            };
            for (name, required) in (At {
                node: list,
                path: &list_path,
            })
            .entries()?
            {
                let r_at = At {
                    node: required,
                    path: &format!("{list_path}.{name}"),
                };
                let is_required = match &required.value {
                    Value::Map(_) => match field(required, "required") {
                        Some(n) => At {
                            node: n,
                            path: &format!("{list_path}.{name}.required"),
                        }
                        .bool()?,
                        None => false,
                    },
                    _ => r_at.bool()?,
                };
                if is_required {
                    target.push(if kind == "headers" {
                        name.to_ascii_lowercase()
                    } else {
                        name.clone()
                    });
                }
            }
        }
    }
    let empty = out.schemas.is_empty()
        && out.required_query.is_empty()
        && out.required_headers.is_empty()
        && out.required_paths.is_empty();
    Ok((!empty).then_some(out))
}
