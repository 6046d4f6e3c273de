//! Bundler plugins: `serverless-esbuild`, `serverless-plugin-typescript`, `serverless-bundle`
//! and `serverless-webpack` build Node.js handlers (often TypeScript) when the Framework
//! deploys, so the handler file named in `serverless.yml` may not exist in the source tree.
//! Sylph builds them with esbuild instead; this module reads the options that map
//! (`custom.esbuild`, `custom.bundle`) into a [`NodeBuild`].

use std::collections::BTreeMap;

use sylph_model::NodeBuild;

use crate::build::{field, At};
use crate::error::Problem;
use crate::yaml::{Node, Value};

/// The plugins whose job Sylph does with esbuild.
pub(crate) const BUNDLER_PLUGINS: &[&str] = &[
    "serverless-esbuild",
    "serverless-plugin-typescript",
    "serverless-bundle",
    "serverless-webpack",
];

/// What the service's bundler plugin asks for, or `None` without one.
pub(crate) fn node_build(
    plugins: &[String],
    root: &Node,
    notices: &mut Vec<String>,
) -> Result<Option<NodeBuild>, Problem> {
    let Some(plugin) = plugins.iter().find(|p| BUNDLER_PLUGINS.contains(&p.as_str())) else {
        return Ok(None);
    };
    let mut build = NodeBuild {
        plugin: plugin.clone(),
        bundle: true,
        minify: false,
        sourcemap: true,
        target: None,
        // Lambda's Node.js runtimes provide the AWS SDK; the plugins leave it out by default.
        external: vec!["@aws-sdk/*".into(), "aws-sdk".into()],
        define: BTreeMap::new(),
        esm: false,
        tsconfig: None,
        keep_names: false,
    };
    let custom = field(root, "custom");
    match plugin.as_str() {
        "serverless-esbuild" => {
            if let Some(node) = custom.and_then(|c| field(c, "esbuild")) {
                esbuild_options(
                    At {
                        node,
                        path: "custom.esbuild",
                    },
                    &mut build,
                )?;
            }
        }
        "serverless-bundle" => {
            if let Some(node) = custom.and_then(|c| field(c, "bundle")) {
                bundle_options(
                    At {
                        node,
                        path: "custom.bundle",
                    },
                    &mut build,
                )?;
            }
        }
        "serverless-plugin-typescript" => {
            // It compiles with tsc, file by file, and copies node_modules.
            build.bundle = false;
        }
        _ => notices.push(
            "plugin serverless-webpack: its webpack.config.js is not run; sylph bundles the handlers with esbuild instead".into(),
        ),
    }
    notices.push(format!(
        "plugin {plugin}: sylph builds the Node.js handlers with esbuild into .esbuild/.build (and again on every change)"
    ));
    Ok(Some(build))
}

/// `custom.esbuild`, as serverless-esbuild reads it.
fn esbuild_options(at: At<'_, '_>, build: &mut NodeBuild) -> Result<(), Problem> {
    for (key, node) in at.entries()? {
        let path = format!("{}.{key}", at.path);
        let sub = At { node, path: &path };
        match key.as_str() {
            "bundle" => build.bundle = sub.bool()?,
            "minify" => build.minify = sub.bool()?,
            "sourcemap" => {
                build.sourcemap = match &node.value {
                    Value::Str(s) => s != "false",
                    _ => sub.bool()?,
                }
            }
            "target" => build.target = Some(sub.str()?.to_owned()),
            "keepNames" => build.keep_names = sub.bool()?,
            "tsconfig" => build.tsconfig = Some(sub.str()?.to_owned()),
            "format" => {
                build.esm = match sub.str()? {
                    "esm" => true,
                    "cjs" => false,
                    other => {
                        return Err(sub
                            .problem(format!("format `{other}` is not one Lambda runs"))
                            .help("use cjs or esm"))
                    }
                }
            }
            // `exclude` also keeps packages out of the bundle (serverless-esbuild then leaves
            // them out of the zip too; locally they are found in node_modules).
            "external" | "exclude" => {
                for name in sub.strings()? {
                    if name != "*" && !build.external.contains(&name) {
                        build.external.push(name);
                    }
                }
            }
            "define" => {
                for (name, value) in sub.entries()? {
                    let value_at = At {
                        node: value,
                        path: &format!("{path}.{name}"),
                    };
                    build.define.insert(name.clone(), value_at.str()?.to_owned());
                }
            }
            // Packaging, watching and plugin settings that have no meaning for a local build.
            _ => {}
        }
    }
    Ok(())
}

/// `custom.bundle`, as serverless-bundle reads it.
fn bundle_options(at: At<'_, '_>, build: &mut NodeBuild) -> Result<(), Problem> {
    for (key, node) in at.entries()? {
        let path = format!("{}.{key}", at.path);
        let sub = At { node, path: &path };
        match key.as_str() {
            "sourcemaps" => build.sourcemap = sub.bool()?,
            "minifyCode" => build.minify = sub.bool()?,
            "tsConfig" => build.tsconfig = Some(sub.str()?.to_owned()),
            "externals" | "forceExclude" => {
                if let Value::Seq(_) = node.value {
                    for name in sub.strings()? {
                        if !build.external.contains(&name) {
                            build.external.push(name);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}
