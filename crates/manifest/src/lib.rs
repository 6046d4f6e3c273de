//! Reads a `serverless.yml` the way the Serverless Framework v3/v4 reads it — for the subset
//! real services use — and produces the resolved [`sylph_model::Service`].
//!
//! Steps: parse YAML into a tree that keeps positions and CloudFormation tags ([`yaml`]),
//! apply provider defaults, resolve `${...}` variables ([`vars`]), then validate and convert
//! into the model, resolving CloudFormation intrinsics where Sylph knows the answer ([`cfn`]).
//! Every error names the file, line, column and document path and says what to do.
//! This crate does not start processes or serve anything.

mod auth;
mod build;
mod bundle;
mod cfn;
mod conditions;
mod error;
mod iam;
mod layers;
pub mod params;
mod validation;
pub mod vars;
pub mod yaml;

use std::path::Path;

pub use error::{Diagnostic, ManifestError};
pub use params::Params;
pub use vars::Context;

use crate::vars::{Resolver, Seg};
use crate::yaml::{Mark, Node, Value};

/// A loaded service plus the notices the user should see (ignored plugins, for example).
#[derive(Debug)]
pub struct Loaded {
    pub service: sylph_model::Service,
    pub notices: Vec<String>,
}

/// Read and resolve the manifest at `path`.
pub fn load(path: &Path, ctx: &Context) -> Result<Loaded, ManifestError> {
    let source = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_owned(),
        source,
    })?;
    load_str(&source, path, ctx)
}

/// Resolve manifest text; `file` is only used in messages.
pub fn load_str(source: &str, file: &Path, ctx: &Context) -> Result<Loaded, ManifestError> {
    let fail = |p: error::Problem| p.into_error(file.to_owned());
    let mut root = yaml::parse(source)
        .map_err(|e| fail(error::Problem::new(e.mark, "", format!("invalid YAML: {}", e.message))))?;
    if !matches!(root.value, Value::Map(_)) {
        return Err(fail(
            error::Problem::new(
                root.mark,
                "",
                format!("expected a mapping at the top level, found {}", root.kind()),
            )
            .help("a serverless.yml starts with `service:`, `provider:` and `functions:`"),
        ));
    }
    apply_provider_defaults(&mut root);
    let mut resolver = Resolver::new(root, ctx);
    resolver.resolve_deep(&mut Vec::<Seg>::new()).map_err(fail)?;
    let stage = resolver.stage().map_err(fail)?;
    let region = resolver.region().map_err(fail)?;
    build::service(
        &resolver.root,
        stage,
        region,
        &ctx.service_dir,
        &ctx.params,
        &ctx.dotenv,
    )
    .map_err(fail)
}

/// Make `provider.stage`, `provider.region` and friends visible to `${self:provider.…}` even
/// when the file leaves them out, as the Serverless Framework does.
fn apply_provider_defaults(root: &mut Node) {
    let Value::Map(entries) = &mut root.value else { return };
    if !entries.iter().any(|(k, _)| k == "provider") {
        entries.push(("provider".into(), Node::new(Value::Map(Vec::new()), Mark::default())));
    }
    let Some(provider) = root.get_mut("provider") else {
        return;
    };
    let Value::Map(p) = &mut provider.value else { return };
    let defaults = [
        ("name", Value::Str("aws".into())),
        ("stage", Value::Str("dev".into())),
        ("region", Value::Str("us-east-1".into())),
        ("memorySize", Value::Int(1024)),
        ("timeout", Value::Int(6)),
    ];
    for (key, value) in defaults {
        if !p.iter().any(|(k, _)| k == key) {
            p.push((key.into(), Node::new(value, Mark::default())));
        }
    }
}
