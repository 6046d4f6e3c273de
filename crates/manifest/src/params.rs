//! Values for what AWS resolves when the Framework deploys and Sylph cannot know on a local
//! machine: `${param:…}`, `${ssm:…}`, `${cf:…}`, `${s3:…}`, `${construct:…}` and the other
//! AWS-side variable sources, and CloudFormation `Fn::ImportValue`, `Fn::GetAtt` and `Ref` of
//! resources outside the service. They come from a parameters file beside the manifest
//! ([`PARAMS_FILE`]) and from `--param` flags, which win over the file:
//!
//! ```yaml
//! param:            # ${param:domain}
//!   domain: example.test
//! ssm:              # ${ssm:/shared/api-url}
//!   /shared/api-url: http://127.0.0.1:9000
//! cf:               # ${cf:network-dev.VpcId}
//!   network-dev.VpcId: vpc-local
//! ImportValue:      # Fn::ImportValue: shared-bucket
//!   shared-bucket: local-bucket
//! GetAtt:           # Fn::GetAtt: [UserPool, Arn], for a resource Sylph does not run
//!   UserPool.Arn: arn:aws:cognito-idp:us-east-1:000000000000:userpool/local
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{ManifestError, Problem};
use crate::yaml::{self, Value};

/// The parameters file looked for beside `serverless.yml`.
pub const PARAMS_FILE: &str = "sylph.params.yml";

/// The sections of a parameters file besides the variable sources.
const CFN_SECTIONS: &[&str] = &["ImportValue", "GetAtt", "Ref"];

/// Values keyed by source and address (`ssm` and `/shared/api-url`).
#[derive(Debug, Clone, Default)]
pub struct Params {
    values: HashMap<(String, String), String>,
    /// The file values come from, or would: named in messages about a missing value.
    file: PathBuf,
}

impl Params {
    /// Read `file` (by default [`PARAMS_FILE`] in `service_dir`, if it exists), then apply
    /// `flags`: `NAME=VALUE` for `${param:NAME}`, or `SOURCE:ADDRESS=VALUE` for another source.
    pub fn load(file: Option<&Path>, service_dir: &Path, flags: &[String]) -> Result<Params, ManifestError> {
        let (path, required) = match file {
            Some(f) => (f.to_owned(), true),
            None => (service_dir.join(PARAMS_FILE), false),
        };
        let mut params = Params {
            values: HashMap::new(),
            file: path.clone(),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => params.read(&text).map_err(|p| p.into_error(path.clone()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {}
            Err(source) => return Err(ManifestError::Read { path, source }),
        }
        for flag in flags {
            let (key, value) = flag.split_once('=').ok_or_else(|| {
                Problem::new(Default::default(), "", format!("--param `{flag}` has no `=`"))
                    .help("write --param NAME=VALUE, or --param ssm:/path=VALUE for another source")
                    .into_error(PathBuf::from("--param"))
            })?;
            let (source, address) = match key.split_once(':') {
                Some((source, address)) if is_source(source) => (source, address),
                _ => ("param", key),
            };
            params
                .values
                .insert((source.to_owned(), address.to_owned()), value.to_owned());
        }
        Ok(params)
    }

    fn read(&mut self, text: &str) -> Result<(), Problem> {
        let root = yaml::parse(text).map_err(|e| Problem::new(e.mark, "", format!("invalid YAML: {}", e.message)))?;
        let sections = match &root.value {
            Value::Map(entries) => entries,
            Value::Null => return Ok(()),
            _ => {
                return Err(Problem::new(
                    root.mark,
                    "",
                    "expected a mapping of sources (param, ssm, cf, …)",
                ))
            }
        };
        for (source, node) in sections {
            if !is_source(source) {
                return Err(Problem::new(
                    node.mark,
                    source.clone(),
                    format!("`{source}` is not a variable source"),
                )
                .help("use param, ssm, cf, s3, secretsmanager, construct, terraform, ImportValue, GetAtt or Ref"));
            }
            let Value::Map(entries) = &node.value else {
                return Err(Problem::new(
                    node.mark,
                    source.clone(),
                    format!("expected a mapping, found {}", node.kind()),
                ));
            };
            for (address, value) in entries {
                let text = match &value.value {
                    Value::Str(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    Value::Float(f) => f.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => {
                        return Err(Problem::new(
                            value.mark,
                            format!("{source}.{address}"),
                            format!("expected a string, found {}", value.kind()),
                        ))
                    }
                };
                self.values.insert((source.clone(), address.clone()), text);
            }
        }
        Ok(())
    }

    /// The value given for `address` of `source`.
    pub fn get(&self, source: &str, address: &str) -> Option<&str> {
        self.values
            .get(&(source.to_owned(), address.to_owned()))
            .map(String::as_str)
    }

    /// How to give a missing value, for messages.
    pub fn how_to_set(&self, source: &str, address: &str) -> String {
        let flag = if source == "param" {
            format!("--param '{address}=VALUE'")
        } else {
            format!("--param '{source}:{address}=VALUE'")
        };
        format!(
            "give it a value under `{source}:` in {} or with {flag}",
            self.file.display()
        )
    }
}

fn is_source(name: &str) -> bool {
    crate::vars::REMOTE_SOURCES.contains(&name) || CFN_SECTIONS.contains(&name)
}
