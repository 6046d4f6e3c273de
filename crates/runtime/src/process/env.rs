//! The environment a function instance starts with: Lambda's reserved variables, the
//! function's own, its credentials, and a `PATH` that names only what the sandbox holds.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sylph_telemetry::UtcTime;

use super::{Family, Inner, InstanceCredentials};
use crate::InstanceConfig;

/// Host variables passed through to functions; everything else comes from Lambda's set and the
/// function's `environment`, so a function sees what it would see on Lambda.
const PASSTHROUGH_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "PYENV_ROOT",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

impl Inner {
    /// What every runtime process starts with: the host variables passed through, then the
    /// placeholder credentials and endpoints every function gets.
    fn shared_environment(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for key in PASSTHROUGH_ENV {
            if let Ok(v) = std::env::var(key) {
                env.insert((*key).to_owned(), v);
            }
        }
        for (k, v) in &self.base_env {
            env.insert(k.clone(), v.clone());
        }
        env
    }

    /// `PATH` inside the sandbox: the interpreters' own folders, then the system's, as Lambda
    /// puts `/var/lang/bin` first. The host's `PATH` names folders the sandbox does not hold.
    pub(super) fn sandbox_path(&self, dirs: &[PathBuf]) -> String {
        let mut parts: Vec<String> = dirs
            .iter()
            .map(|d| d.join("bin"))
            .filter(|b| b.is_dir())
            .map(|b| b.to_string_lossy().into_owned())
            .collect();
        parts.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(String::from));
        parts.join(":")
    }

    pub(super) fn environment(
        &self,
        config: &InstanceConfig,
        api_addr: &str,
        credentials: Option<&InstanceCredentials>,
    ) -> BTreeMap<String, String> {
        let f = &config.function;
        let mut env = self.shared_environment();
        let exact = self.exact_choice(&f.runtime);
        if let Some(sdk) = &exact.sdk_path {
            // The SDK installed for this exact Python version replaces the default one.
            env.insert("PYTHONPATH".to_owned(), sdk.clone());
        }
        for (k, v) in &f.environment {
            env.insert(k.clone(), v.clone());
        }
        // Lambda puts the code at /var/task, and search paths are written against it
        // (`PYTHONPATH: /var/task/vendored`): here the code stays in its own folder.
        let root_text = config.root.to_string_lossy();
        for key in ["PYTHONPATH", "NODE_PATH", "PATH", "LD_LIBRARY_PATH"] {
            if let Some(v) = f.environment.get(key).filter(|v| v.contains("/var/task")) {
                let moved: Vec<String> = v
                    .split(':')
                    .map(|part| match part.strip_prefix("/var/task") {
                        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{root_text}{rest}"),
                        _ => part.to_owned(),
                    })
                    .collect();
                env.insert(key.to_owned(), moved.join(":"));
            }
        }
        for (k, v) in &config.extra_env {
            env.insert(k.clone(), v.clone());
        }
        let root = config.root.to_string_lossy().into_owned();
        let now = UtcTime::now();
        let stream = format!(
            "{}/[$LATEST]{}",
            now.slash_date(),
            sylph_telemetry::new_request_id().replace('-', "")
        );
        // Lambda's reserved variables win over the function's, as on AWS.
        let reserved = [
            ("AWS_LAMBDA_RUNTIME_API", api_addr.to_owned()),
            ("_HANDLER", f.handler.clone()),
            ("LAMBDA_TASK_ROOT", root),
            ("LAMBDA_RUNTIME_DIR", self.bootstrap_dir.to_string_lossy().into_owned()),
            ("AWS_LAMBDA_FUNCTION_NAME", f.name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_mb.to_string()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", f.name)),
            ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
            ("AWS_REGION", config.region.clone()),
            ("AWS_DEFAULT_REGION", config.region.clone()),
            ("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", f.runtime.id())),
            ("TZ", ":UTC".to_owned()),
            ("PYTHONUNBUFFERED", "1".to_owned()),
        ];
        for (k, v) in reserved {
            env.insert(k.to_owned(), v);
        }
        if let Some(c) = credentials {
            // The instance's own identity: reserved, as on Lambda.
            env.insert("AWS_ACCESS_KEY_ID".to_owned(), c.access_key_id.to_string());
            env.insert("AWS_SECRET_ACCESS_KEY".to_owned(), c.secret_access_key.clone());
            env.insert("AWS_SESSION_TOKEN".to_owned(), c.session_token.clone());
        }
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "SYLPHLOCALACCESSKEY"),
            ("AWS_SECRET_ACCESS_KEY", "sylph-local-secret-access-key"),
            ("AWS_SESSION_TOKEN", "sylph-local-session-token"),
        ] {
            env.entry(k.to_owned()).or_insert_with(|| v.to_owned());
        }
        if self.sandbox.is_some() {
            let dirs = self.dirs_for(&f.runtime);
            env.insert("PATH".to_owned(), self.sandbox_path(&dirs));
        }
        if !f.layers.is_empty() {
            // In the sandbox the layers are merged at /opt; without one, each folder is used
            // where it is, the last layer first (it wins, as it would in /opt).
            let roots: Vec<PathBuf> = match self.sandbox {
                Some(_) => vec![PathBuf::from(crate::sandbox::LAYERS_DIR)],
                None => f.layers.iter().rev().cloned().collect(),
            };
            add_layer_paths(&mut env, &roots, &f.runtime);
        }
        env
    }

    /// The environment of a runtime started ahead of demand, before it knows its function:
    /// what every function shares. The rest comes with its `Start` frame.
    pub(super) fn generic_environment(&self, family: Family, api_addr: String) -> BTreeMap<String, String> {
        let mut env = self.shared_environment();
        env.insert("AWS_LAMBDA_RUNTIME_API".into(), api_addr);
        env.insert("SYLPH_PREWARM".into(), "1".into());
        env.insert("PYTHONUNBUFFERED".into(), "1".into());
        env.insert("TZ".into(), ":UTC".into());
        if self.sandbox.is_some() {
            env.insert("PATH".into(), self.sandbox_path(&self.visible_dirs(Some(family))));
        }
        if family == Family::Java {
            // The AWS SDK for Java builds its user agent from this once, when a pre-started JVM
            // warms up its clients: give it the value the functions will have.
            let id = self
                .preferred
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&Family::Java)
                .map(|r| r.id().to_owned())
                .unwrap_or_else(|| "java17".to_owned());
            env.insert("AWS_EXECUTION_ENV".into(), format!("AWS_Lambda_{id}"));
        }
        // The SDK it preloads must be the one its interpreter loads (`runtime/python-3.X`).
        if let Some(sdk) = self.preferred_choice(family).and_then(|c| c.sdk_path.clone()) {
            env.insert("PYTHONPATH".into(), sdk);
        }
        env
    }
}

/// The search paths Lambda gives layers, ahead of the runtime's own: `nodejs/node{major}/
/// node_modules` and `nodejs/node_modules` on `NODE_PATH`, `python/lib/python3.x/site-packages`
/// and `python` on `PYTHONPATH`, `bin` on `PATH`, `lib` on `LD_LIBRARY_PATH`.
fn add_layer_paths(env: &mut BTreeMap<String, String>, roots: &[PathBuf], runtime: &sylph_model::Runtime) {
    let mut prepend = |key: &str, dirs: Vec<PathBuf>| {
        let mut parts: Vec<String> = dirs.iter().map(|d| d.to_string_lossy().into_owned()).collect();
        // Without a PATH of its own, an instance inherits Sylph's: keep it behind the layers'.
        let inherited = (key == "PATH").then(|| std::env::var("PATH").ok()).flatten();
        if let Some(existing) = env.get(key).cloned().or(inherited).filter(|v| !v.is_empty()) {
            parts.push(existing);
        }
        env.insert(key.to_owned(), parts.join(":"));
    };
    match runtime {
        sylph_model::Runtime::Node(id) => {
            let major = id.trim_start_matches("nodejs").trim_end_matches(".x");
            prepend(
                "NODE_PATH",
                roots
                    .iter()
                    .flat_map(|r| {
                        [
                            r.join(format!("nodejs/node{major}/node_modules")),
                            r.join("nodejs/node_modules"),
                        ]
                    })
                    .collect(),
            );
        }
        sylph_model::Runtime::Python(id) => prepend(
            "PYTHONPATH",
            roots
                .iter()
                .flat_map(|r| [r.join(format!("python/lib/{id}/site-packages")), r.join("python")])
                .collect(),
        ),
        // The Java runtime client loads `/opt/java/lib/*.jar` itself.
        sylph_model::Runtime::Provided(_) | sylph_model::Runtime::Java(_) | sylph_model::Runtime::Wasm(_) => {}
    }
    prepend("PATH", roots.iter().map(|r| r.join("bin")).collect());
    prepend("LD_LIBRARY_PATH", roots.iter().map(|r| r.join("lib")).collect());
}
