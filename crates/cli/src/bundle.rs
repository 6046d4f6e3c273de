//! Building Node.js handlers with esbuild when a service lists a bundler plugin
//! (`serverless-esbuild` and friends; see `sylph_manifest`'s bundle module), as the plugin would
//! when the Framework deploys: one esbuild run for every handler, into `.esbuild/.build` (the
//! folder serverless-esbuild uses), with each handler pointed at its built file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};
use sylph_model::{NodeBuild, Runtime, Service};

/// Where the built handlers go, inside the service folder (it must be visible to functions).
pub const OUT_DIR: &str = ".esbuild/.build";

/// Source extensions a handler file may have, in the order they are looked for.
const SOURCE_EXTENSIONS: &[&str] = &["ts", "tsx", "mts", "cts", "js", "mjs", "cjs"];

/// An esbuild run that can be repeated when the code changes.
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    esbuild: PathBuf,
    root: PathBuf,
    args: Vec<String>,
}

impl NodeBuilder {
    /// Build again (after a change), keeping the handlers pointed where they are.
    pub fn rebuild(&self) -> anyhow::Result<()> {
        run(&self.esbuild, &self.root, &self.args)
    }
}

/// Build the Node.js handlers of `service` if it asks for a bundler, and point each function
/// at its built file. `None` when there is nothing to build.
pub fn build_node(service: &mut Service) -> anyhow::Result<Option<NodeBuilder>> {
    let Some(options) = service.node_build.clone() else {
        return Ok(None);
    };
    let root = service.root.clone();
    let mut entries: Vec<String> = Vec::new();
    let mut target = options.target.clone();
    for f in service.functions.iter_mut() {
        let Runtime::Node(runtime) = &f.runtime else { continue };
        let (module, export) = split_handler(&f.handler)
            .with_context(|| format!("function {}: handler `{}` is not `file.function`", f.key, f.handler))?;
        let Some(entry) = SOURCE_EXTENSIONS
            .iter()
            .map(|ext| format!("{module}.{ext}"))
            .find(|candidate| root.join(candidate).is_file())
        else {
            bail!(
                "function {}: no handler file {module}.{{{}}} in {}",
                f.key,
                SOURCE_EXTENSIONS.join(","),
                root.display()
            );
        };
        if target.is_none() {
            // `nodejs20.x` → `node20`.
            target = runtime
                .strip_prefix("nodejs")
                .and_then(|v| v.strip_suffix(".x"))
                .map(|v| format!("node{v}"));
        }
        if !entries.contains(&entry) {
            entries.push(entry);
        }
        f.handler = format!("{OUT_DIR}/{module}.{export}");
        if options.sourcemap {
            // Stack traces name the source files, as on Lambda with the same setting.
            let node_options = f.environment.entry("NODE_OPTIONS".into()).or_default();
            if !node_options.contains("--enable-source-maps") {
                if !node_options.is_empty() {
                    node_options.push(' ');
                }
                node_options.push_str("--enable-source-maps");
            }
        }
    }
    if entries.is_empty() {
        return Ok(None);
    }
    let esbuild = find_esbuild(&root)?;
    let args = esbuild_args(&options, &entries, target.as_deref());
    eprintln!(
        "building Node.js handlers with esbuild ({} for {}): {} file(s) into {OUT_DIR}",
        esbuild.display(),
        options.plugin,
        entries.len()
    );
    // A build left over from before must not be run if this one fails.
    let _ = std::fs::remove_dir_all(root.join(OUT_DIR));
    run(&esbuild, &root, &args)?;
    Ok(Some(NodeBuilder { esbuild, root, args }))
}

/// `src/handlers/todo.create` → (`src/handlers/todo`, `create`): the module is everything up to
/// the first dot after the last slash, as Lambda reads it.
fn split_handler(handler: &str) -> Option<(&str, &str)> {
    let slash = handler.rfind('/').map_or(0, |i| i + 1);
    let dot = slash + handler[slash..].find('.')?;
    let (module, export) = (&handler[..dot], &handler[dot + 1..]);
    (dot > slash && !export.is_empty()).then_some((module, export))
}

fn esbuild_args(options: &NodeBuild, entries: &[String], target: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = entries.to_vec();
    args.push("--platform=node".into());
    args.push(format!("--outdir={OUT_DIR}"));
    // Keep the source tree's shape, so `src/a.ts` becomes `.esbuild/.build/src/a.js`.
    args.push("--outbase=.".into());
    args.push("--log-level=warning".into());
    if let Some(t) = target {
        args.push(format!("--target={t}"));
    }
    if options.esm {
        args.push("--format=esm".into());
        args.push("--out-extension:.js=.mjs".into());
    } else {
        args.push("--format=cjs".into());
    }
    if options.bundle {
        args.push("--bundle".into());
        if options.packages_external {
            args.push("--packages=external".into());
        }
        for e in &options.external {
            args.push(format!("--external:{e}"));
        }
    }
    if options.minify {
        args.push("--minify".into());
    }
    if options.sourcemap {
        args.push("--sourcemap".into());
    }
    if options.keep_names {
        args.push("--keep-names".into());
    }
    if let Some(tsconfig) = &options.tsconfig {
        args.push(format!("--tsconfig={tsconfig}"));
    }
    for (name, value) in &options.define {
        args.push(format!("--define:{name}={value}"));
    }
    args
}

/// The service's own esbuild (the version its lock file pins), else the one
/// `scripts/install-runtimes` puts beside the runtime SDKs, else one on `PATH`.
fn find_esbuild(root: &Path) -> anyhow::Result<PathBuf> {
    let candidates = [
        root.join("node_modules/.bin/esbuild"),
        crate::options::sylph_home().join("tools/node_modules/.bin/esbuild"),
    ];
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("esbuild"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        anyhow::anyhow!(
            "the service lists a bundler plugin, and esbuild is not installed: run `npm install --save-dev esbuild` in {} (or scripts/install-runtimes)",
            root.display()
        )
    })
}

fn run(esbuild: &Path, root: &Path, args: &[String]) -> anyhow::Result<()> {
    let status = Command::new(esbuild)
        .args(args)
        .current_dir(root)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("cannot run {}", esbuild.display()))?;
    if !status.success() {
        bail!("esbuild failed (its messages are above)");
    }
    Ok(())
}

/// `serverless-python-requirements`: install the service's requirements file with pip into a
/// cache keyed by the file's content and the interpreter (so an unchanged file installs once),
/// and give every Python function the result as its last layer (`python/` in it), where it
/// wins over the other layers as the plugin's packaged copy would.
pub fn install_python_requirements(service: &mut Service) -> anyhow::Result<()> {
    use sha2::Digest as _;
    let Some(file) = service.python_requirements.clone() else {
        return Ok(());
    };
    if !service
        .functions
        .iter()
        .any(|f| matches!(f.runtime, Runtime::Python(_)))
    {
        return Ok(());
    }
    let text = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let version = Command::new("python3")
        .arg("--version")
        .output()
        .context("cannot run python3")?
        .stdout;
    let mut hash = sha2::Sha256::new();
    hash.update(&text);
    hash.update(&version);
    let key: String = hash.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect();
    let layer = crate::options::sylph_home().join("python-requirements").join(key);
    let done = layer.join(".complete");
    if !done.is_file() {
        eprintln!(
            "installing {} for the Python functions (pip, into {})",
            file.display(),
            layer.display()
        );
        let _ = std::fs::remove_dir_all(&layer);
        let target = layer.join("python");
        let status = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
            ])
            .arg(&file)
            .arg("--target")
            .arg(&target)
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status()
            .context("cannot run pip (python3 -m pip)")?;
        if !status.success() {
            bail!("pip could not install {} (its messages are above)", file.display());
        }
        std::fs::write(&done, b"").with_context(|| format!("cannot write {}", done.display()))?;
    }
    for f in service
        .functions
        .iter_mut()
        .filter(|f| matches!(f.runtime, Runtime::Python(_)))
    {
        f.layers.push(layer.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handlers_split_at_the_first_dot_of_the_file_name() {
        assert_eq!(split_handler("src/todo.create"), Some(("src/todo", "create")));
        assert_eq!(split_handler("handler.main"), Some(("handler", "main")));
        assert_eq!(split_handler("a.b/c.d.e"), Some(("a.b/c", "d.e")));
        assert_eq!(split_handler("nodot"), None);
        assert_eq!(split_handler("src/.x"), None);
    }
}
