//! Access settings of a service's routes at start: the values of its API keys (made up once
//! where the manifest gives none, and kept beside the service's data so they survive a
//! restart) and the authorizer context for authorizers Sylph cannot run.

use std::path::Path;

use anyhow::Context as _;
use serde_json::{Map, Value};
use sylph_gateway::AccessSettings;
use sylph_model::Service;

/// Where made-up key values are kept, inside a data folder.
const KEYS_FILE: &str = "api-keys.json";

/// 32 letters and digits; a made-up key is 40 of them (200 bits), as long as AWS's.
const KEY_ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyz2345678";

/// The settings for `service`, and the lines to print about them.
pub fn settings(
    service: &Service,
    data_dir: &Path,
    authorizer_context: Option<&Path>,
    jwks: Option<&Path>,
    development: bool,
    cognito_identity_id: Option<&str>,
) -> anyhow::Result<(AccessSettings, Vec<String>)> {
    let jwks = match jwks {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read --jwks {}", path.display()))?;
            Some(serde_json::from_str::<Value>(&text).with_context(|| format!("--jwks {}: not JSON", path.display()))?)
        }
        None => None,
    };
    let mut lines = Vec::new();
    let external_context = match authorizer_context {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --authorizer-context {}", path.display()))?;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => Some(map),
                Ok(_) => anyhow::bail!(
                    "--authorizer-context {}: expected a JSON object such as {{\"principalId\": \"user-1\", \"role\": \"admin\"}}",
                    path.display()
                ),
                Err(e) => anyhow::bail!("--authorizer-context {}: not JSON: {e}", path.display()),
            }
        }
        None => None,
    };
    let api_keys = api_keys(service, data_dir)?;
    for (name, value) in &api_keys {
        lines.push(format!("api key {name}: {value}"));
    }
    Ok((
        AccessSettings {
            api_keys,
            external_context,
            jwks,
            development,
            cognito_identity_id: cognito_identity_id.map(str::to_owned),
        },
        lines,
    ))
}

/// (name, value) of every API key: the manifest's value, else the one made up before, else a
/// new one (saved at once).
fn api_keys(service: &Service, data_dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    if service.api_keys.is_empty() {
        return Ok(Vec::new());
    }
    let path = data_dir.join(KEYS_FILE);
    let mut saved: Map<String, Value> = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid JSON", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut changed = false;
    let mut out = Vec::with_capacity(service.api_keys.len());
    for key in &service.api_keys {
        let value = match (&key.value, saved.get(&key.name).and_then(Value::as_str)) {
            (Some(v), _) => v.clone(),
            (None, Some(v)) => v.to_owned(),
            (None, None) => {
                let v = sylph_telemetry::random_chars(40, KEY_ALPHABET);
                saved.insert(key.name.clone(), Value::String(v.clone()));
                changed = true;
                v
            }
        };
        out.push((key.name.clone(), value));
    }
    if changed {
        std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&saved)?)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(out)
}
