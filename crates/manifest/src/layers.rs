//! Lambda layers: `layers:` of the service (a folder each, `path:`) and the `layers:` list of
//! a function (or of the provider), by `Ref: XLambdaLayer` or by ARN. A layer of another
//! service (an ARN Sylph has no folder for) cannot be mounted: a notice names it.

use std::path::{Path, PathBuf};

use crate::build::{field, logical_id_base, At};
use crate::error::Problem;
use crate::yaml::{Node, Value};

/// The service's own layers.
#[derive(Default)]
pub(crate) struct ServiceLayers {
    /// (logical id `XLambdaLayer`, deployed name, folder).
    layers: Vec<(String, String, PathBuf)>,
}

impl ServiceLayers {
    pub(crate) fn read(root: &Node, dir: &Path, notices: &mut Vec<String>) -> Result<ServiceLayers, Problem> {
        let mut out = ServiceLayers::default();
        let Some(node) = field(root, "layers") else {
            return Ok(out);
        };
        for (key, def) in (At { node, path: "layers" }).entries()? {
            let path = format!("layers.{key}");
            let at = At { node: def, path: &path };
            at.entries()?;
            let name = match field(def, "name") {
                Some(n) => At {
                    node: n,
                    path: &format!("{path}.name"),
                }
                .str()?
                .to_owned(),
                None => key.clone(),
            };
            let folder = match field(def, "path") {
                Some(n) => {
                    let p_at = At {
                        node: n,
                        path: &format!("{path}.path"),
                    };
                    let folder = dir.join(p_at.str()?);
                    if !folder.is_dir() {
                        return Err(p_at
                            .problem(format!("layer folder {} does not exist", folder.display()))
                            .help(
                                "`path` names a folder (holding nodejs/, python/, bin/ or lib/) beside serverless.yml",
                            ));
                    }
                    folder
                }
                None => {
                    notices.push(format!(
                        "{path}: only layers given by a folder (`path:`) are mounted; functions run without {key}"
                    ));
                    continue;
                }
            };
            out.layers
                .push((format!("{}LambdaLayer", logical_id_base(key)), name, folder));
        }
        Ok(out)
    }

    /// The folders of `layers:` on a function (or, without one, on the provider).
    pub(crate) fn of_function(
        &self,
        function: &Node,
        provider: &Node,
        function_path: &str,
        notices: &mut Vec<String>,
    ) -> Result<Vec<PathBuf>, Problem> {
        let (node, path) = match field(function, "layers") {
            Some(n) => (n, format!("{function_path}.layers")),
            None => match field(provider, "layers") {
                Some(n) => (n, "provider.layers".to_owned()),
                None => return Ok(Vec::new()),
            },
        };
        let mut out = Vec::new();
        for (i, item) in (At { node, path: &path }).items()?.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let at = At {
                node: item,
                path: &item_path,
            };
            let found = match &item.value {
                Value::Map(_) => match item.to_json().get("Ref").and_then(|r| r.as_str()) {
                    Some(id) => match self.layers.iter().find(|(logical, ..)| logical == id) {
                        Some((.., folder)) => folder.clone(),
                        None => {
                            let known: Vec<&str> = self.layers.iter().map(|(l, ..)| l.as_str()).collect();
                            return Err(at.problem(format!("`{id}` is not a layer of this service")).help(
                                if known.is_empty() {
                                    "declare the layer under `layers:` with a `path:`".to_owned()
                                } else {
                                    format!("use one of: {}", known.join(", "))
                                },
                            ));
                        }
                    },
                    None => return Err(at.expected("`Ref: XLambdaLayer` or a layer ARN")),
                },
                Value::Str(arn) => {
                    // arn:aws:lambda:region:account:layer:NAME:VERSION
                    let name = arn.split(':').nth(6).unwrap_or("");
                    if !arn.starts_with("arn:") || name.is_empty() {
                        return Err(at.expected("`Ref: XLambdaLayer` or a layer ARN"));
                    }
                    match self.layers.iter().find(|(_, n, _)| n == name) {
                        Some((.., folder)) => folder.clone(),
                        None => {
                            notices.push(format!(
                                "{item_path}: layer {arn} belongs to no service here, so it is not mounted"
                            ));
                            continue;
                        }
                    }
                }
                _ => return Err(at.expected("`Ref: XLambdaLayer` or a layer ARN")),
            };
            out.push(found);
        }
        Ok(out)
    }
}
