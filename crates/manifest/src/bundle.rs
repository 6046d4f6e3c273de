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

/// Every plugin whose job Sylph does itself (each says how in its own notice).
pub(crate) const BUILD_PLUGINS: &[&str] = &[
    "serverless-esbuild",
    "serverless-plugin-typescript",
    "serverless-bundle",
    "serverless-webpack",
    "serverless-python-requirements",
    "serverless-wsgi",
];

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
    let Some(plugin) = plugins.iter().find(|p| is_bundler(p)) else {
        return Ok(None);
    };
    let mut build = NodeBuild {
        plugin: plugin.clone(),
        bundle: true,
        packages_external: false,
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
        p if p.ends_with("serverless-plugin-typescript") => {
            // It compiles every file with tsc and ships node_modules beside them: the same as
            // bundling the service's own modules with npm packages left outside.
            build.packages_external = true;
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

/// A bundler plugin, or a published fork of one (`@scope/serverless-plugin-typescript`).
pub(crate) fn is_bundler(plugin: &str) -> bool {
    BUNDLER_PLUGINS.iter().any(|b| {
        plugin == *b
            || plugin
                .strip_suffix(b)
                .is_some_and(|scope| scope.starts_with('@') && scope.ends_with('/'))
    })
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

/// `serverless-python-requirements`: the requirements file to install (`custom.
/// pythonRequirements.fileName`, default `requirements.txt`), if the plugin is listed.
pub(crate) fn python_requirements(
    plugins: &[String],
    root: &Node,
    dir: &std::path::Path,
    notices: &mut Vec<String>,
) -> Result<Option<std::path::PathBuf>, Problem> {
    if !plugins.iter().any(|p| p == "serverless-python-requirements") {
        return Ok(None);
    }
    let options = field(root, "custom").and_then(|c| field(c, "pythonRequirements"));
    let name = match options.and_then(|o| field(o, "fileName")) {
        Some(n) => At {
            node: n,
            path: "custom.pythonRequirements.fileName",
        }
        .str()?
        .to_owned(),
        None => "requirements.txt".to_owned(),
    };
    let file = dir.join(&name);
    if !file.is_file() {
        notices.push(format!(
            "plugin serverless-python-requirements: there is no {name} beside serverless.yml (Pipfile and pyproject.toml are not read), so nothing is installed"
        ));
        return Ok(None);
    }
    notices.push(format!(
        "plugin serverless-python-requirements: sylph installs {name} with pip into a cache that Python functions see as their last layer"
    ));
    Ok(Some(file))
}

/// `serverless-wsgi`: the WSGI application (`custom.wsgi.app`) that functions whose handler is
/// `wsgi_handler.handler` serve, if the plugin is listed.
pub(crate) fn wsgi_app(plugins: &[String], root: &Node, notices: &mut Vec<String>) -> Result<Option<String>, Problem> {
    if !plugins.iter().any(|p| p == "serverless-wsgi") {
        return Ok(None);
    }
    let app = field(root, "custom")
        .and_then(|c| field(c, "wsgi"))
        .and_then(|w| field(w, "app"));
    match app {
        Some(n) => {
            let at = At {
                node: n,
                path: "custom.wsgi.app",
            };
            let app = at.str()?;
            if !app.contains('.') {
                return Err(at
                    .problem(format!("`{app}` does not name a WSGI application"))
                    .help("write module.attribute, for example `app.app` for `app = Flask(__name__)` in app.py"));
            }
            notices.push(format!(
                "plugin serverless-wsgi: functions with handler {WSGI_HANDLER} serve {app} through sylph's WSGI adapter"
            ));
            Ok(Some(app.to_owned()))
        }
        None => Err(Problem::new(
            root.mark,
            "custom.wsgi.app",
            "serverless-wsgi is listed but `custom.wsgi.app` is missing",
        )
        .help("add `custom: { wsgi: { app: app.app } }` naming your Flask or Django application")),
    }
}

/// The handler serverless-wsgi's functions name, and the one Sylph serves them with.
pub(crate) const WSGI_HANDLER: &str = "wsgi_handler.handler";
pub(crate) const SYLPH_WSGI_HANDLER: &str = "sylph_wsgi.handler";
