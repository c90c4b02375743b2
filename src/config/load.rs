//! Reading a configuration: parse with positions, warn about unknown keys, apply `ISLAND_*`
//! overrides, validate what the types alone cannot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::Document;

use super::known::unknown_key_warning;
use super::locate::{key_at, key_span_of, line_col, span_of};
use super::{Config, ConfigError, Problem, TrustedKey};

/// A loaded configuration and what the owner should hear about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// The file it came from.
    pub path: PathBuf,
    /// Non-fatal findings: unknown keys (with a suggestion), placeholders left in.
    pub warnings: Vec<String>,
}

/// Reads, parses, overrides from the environment and validates the file at `path`.
///
/// # Errors
/// [`ConfigError::Read`] when the file cannot be read, [`ConfigError::Invalid`] for syntax,
/// type and value errors (with line and column), [`ConfigError::Env`] for a bad override.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    let (mut config, mut warnings) = parse(&text, path)?;
    if config.coordinator.nats_url.credentials().is_some() {
        warnings.extend(keep_private(path));
        warnings.push(format!(
            "{}: `coordinator.nats_url` carries the coordinator password; it works, but the OS keyring \
             keeps it better: `island credentials import` moves it there and takes it out of the file",
            path.display()
        ));
    }
    env_overrides(&mut config, |k| std::env::var(k).ok())?;
    validate_overridden(&config)?;
    Ok(Loaded { config, path: path.to_path_buf(), warnings })
}

/// A config file with a password in it is made readable by its owner only (Unix), and the
/// returned line says so; `None` when it already was (or on other systems).
fn keep_private(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            return None;
        }
        let tightened = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700));
        Some(match tightened {
            Ok(()) => format!(
                "{}: it holds the coordinator password and was readable by others (mode {mode:o}); \
                 it is now readable by you only (mode {:o})",
                path.display(),
                mode & 0o700
            ),
            Err(e) => format!(
                "{}: it holds the coordinator password and is readable by others (mode {mode:o}), \
                 and could not be made private: {e}",
                path.display()
            ),
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The template's example values: never sent to a server. An older template put a
/// placeholder password in `coordinator.nats_url` and an example host name.
const PLACEHOLDER_PASSWORD: &str = "PASSWORD";
const PLACEHOLDER_NAME: &str = "my-machine";

/// Whether `url` carries the template's placeholder password (never to be sent or kept).
pub(super) fn has_placeholder_password(url: &super::NatsUrl) -> bool {
    url.credentials().is_some_and(|(_, p)| p.expose() == PLACEHOLDER_PASSWORD)
}

/// Drops the template's example values from `config`, with a warning for each.
fn drop_placeholders(config: &mut super::Config, path: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    let url = &config.coordinator.nats_url;
    if has_placeholder_password(url) {
        config.coordinator.nats_url =
            url.without_credentials().parse().expect("a valid URL stays valid without credentials");
        warnings.push(format!(
            "{}: `coordinator.nats_url` holds the template's placeholder password, which is never sent; \
             Island connects with the credentials stored in the OS keyring (enter the ones from your \
             dashboard in the window, or run `island credentials set`)",
            path.display()
        ));
    }
    if config.host.name.as_deref() == Some(PLACEHOLDER_NAME) {
        config.host.name = None;
        warnings.push(format!(
            "{}: `host.name` is the template's example \"{PLACEHOLDER_NAME}\"; this computer's name is used instead",
            path.display()
        ));
    }
    warnings
}

/// Validates the configuration after the environment overrides: the file alone passed, so
/// whatever fails now came from a variable, and the error names it.
///
/// # Errors
/// [`ConfigError::Env`] naming the variable and the key it sets.
pub fn validate_overridden(c: &Config) -> Result<(), ConfigError> {
    let empty = Document::parse("").expect("an empty document parses");
    let Some(p) = validate(c, &empty, "").into_iter().next() else { return Ok(()) };
    let key = p.key.unwrap_or_default();
    let var = ENV_KEYS.iter().find(|(_, k)| *k == key).map_or("an ISLAND_* variable", |(v, _)| v);
    Err(ConfigError::Env { var: var.to_string(), message: format!("`{key}` {}", p.message) })
}

/// Which variable sets which key (see [`env_overrides`]).
const ENV_KEYS: &[(&str, &str)] = &[
    ("ISLAND_HOST_ID", "host_id"),
    ("ISLAND_HOST_NAME", "host.name"),
    ("ISLAND_REGION", "host.region"),
    ("ISLAND_MODEL_CACHE_DIR", "model_cache.cache_dir"),
    ("ISLAND_SHUTDOWN_GRACE", "agent.shutdown_grace"),
];

/// Whether `s` can be one token of a NATS subject and a JetStream consumer name: the Island
/// id becomes both (`host.<id>.jobs`, consumer `host-<id>`).
fn subject_token_ok(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control() || ".*>/\\".contains(c))
}

/// Parses and validates a configuration text; `path` is only used in messages.
///
/// # Errors
/// [`ConfigError::Invalid`] listing every problem found.
pub fn parse(text: &str, path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
    let invalid = |problems| ConfigError::Invalid { path: path.to_path_buf(), problems };
    let doc = Document::parse(text).map_err(|e| {
        let position = e.span().map(|s| line_col(text, s.start));
        invalid(vec![Problem { key: None, position, message: first_line(e.message()) }])
    })?;
    let mut unknown = Vec::new();
    let de = toml::Deserializer::parse(text).map_err(|e| invalid(vec![problem_from(&doc, text, &e)]))?;
    let config: Config = serde_ignored::deserialize(de, |p| unknown.push(p.to_string()))
        .map_err(|e| invalid(vec![problem_from(&doc, text, &e)]))?;
    let problems = validate(&config, &doc, text);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    unknown.sort_by_key(|k| key_span_of(&doc, k).map(|s| s.start));
    let mut warnings: Vec<String> = unknown.iter().map(|k| unknown_key_warning(k, &doc, text, path)).collect();
    let mut config = config;
    warnings.extend(drop_placeholders(&mut config, path));
    Ok((config, warnings))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).trim().to_string()
}

fn problem_from(doc: &Document<&str>, text: &str, e: &toml::de::Error) -> Problem {
    let offset = e.span().map(|s| s.start);
    Problem {
        key: offset.and_then(|o| key_at(doc, o)),
        position: offset.map(|o| line_col(text, o)),
        message: first_line(e.message()),
    }
}

fn validate(c: &Config, doc: &Document<&str>, text: &str) -> Vec<Problem> {
    let mut bad: Vec<(&str, String)> = Vec::new();
    let mut need = |ok: bool, key: &'static str, msg: &str| {
        if !ok {
            bad.push((key, msg.to_string()));
        }
    };
    let non_empty = |s: &str| !s.trim().is_empty();
    need(
        c.host_id.as_deref().is_none_or(subject_token_ok),
        "host_id",
        "must be one NATS subject token: not empty, no spaces, '.', '*', '>', '/' or '\\'",
    );
    need(c.host.name.as_deref().is_none_or(non_empty), "host.name", "must not be empty when set");
    need(non_empty(&c.host.region), "host.region", "must not be empty (use \"auto\" to let the coordinator guess)");
    need(non_empty(&c.workload.llm_chat_image), "workload.llm_chat_image", "must name a container image");
    let gpu_ok = c.workload.gpu_devices.iter().all(|d| d.parse::<u32>().is_ok() || d.starts_with("GPU-"));
    need(gpu_ok, "workload.gpu_devices", "each entry must be a GPU index such as \"0\" or a GPU UUID (\"GPU-…\")");
    let cache_dir_ok = c.model_cache.cache_dir.as_ref().is_none_or(|p| !p.as_os_str().is_empty());
    need(cache_dir_ok, "model_cache.cache_dir", "must not be empty when set");
    need(c.pricing.workloads.keys().all(|k| non_empty(k)), "pricing.workloads", "a Cargo slug must not be empty");
    need(c.registry.allowed.iter().all(|s| non_empty(s)), "registry.allowed", "entries must not be empty");
    let prefixes_ok = c.signing.unsigned_allowed_registries.iter().all(|s| non_empty(s));
    need(prefixes_ok, "signing.unsigned_allowed_registries", "entries must not be empty");
    let keys_ok =
        c.signing.trusted_keys.iter().all(|k| {
            non_empty(&k.key_id) && k.key_id.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        });
    need(keys_ok, "signing.trusted_keys", "each key_id must be letters, digits, '-', '_' or '.'");
    let pem_ok = c.signing.trusted_keys.iter().all(|k| k.public_key.contains("BEGIN PUBLIC KEY"));
    need(pem_ok, "signing.trusted_keys", "each public_key must be a PEM public key (-----BEGIN PUBLIC KEY-----)");
    let algorithms_ok = c.signing.trusted_keys.iter().all(|k| TrustedKey::ALGORITHMS.contains(&k.algorithm.as_str()));
    need(algorithms_ok, "signing.trusted_keys", "each algorithm must be ecdsa-p256, ecdsa-p384 or ed25519");
    let a = &c.agent;
    let within = |d: Duration, lo: u64, hi: u64| d >= Duration::from_millis(lo) && d <= Duration::from_millis(hi);
    need(within(a.shutdown_grace, 0, 3_600_000), "agent.shutdown_grace", "expected a duration up to 1h");
    need(
        within(c.workload.job_timeout, 1000, 86_400_000),
        "workload.job_timeout",
        "expected a duration from 1s to 24h",
    );
    need(within(a.cancel_grace, 100, 600_000), "agent.cancel_grace", "expected a duration from 100ms to 10m");
    need(within(a.metrics_interval, 100, 3_600_000), "agent.metrics_interval", "expected a duration from 100ms to 1h");
    let every = c.preload.recommendations_interval;
    need(within(every, 1000, 86_400_000), "preload.recommendations_interval", "expected a duration from 1s to 24h");
    let co = &c.coordinator;
    let sec = "expected a duration from 100ms to 1h";
    need(within(co.heartbeat_interval, 100, 3_600_000), "coordinator.heartbeat_interval", sec);
    need(within(co.lease_interval, 100, 3_600_000), "coordinator.lease_interval", sec);
    need(within(co.ack_wait, 1000, 3_600_000), "coordinator.ack_wait", "expected a duration from 1s to 1h");
    need(within(co.pull_wait, 100, 300_000), "coordinator.pull_wait", "expected a duration from 100ms to 5m");
    need(within(co.stream_check_interval, 100, 3_600_000), "coordinator.stream_check_interval", sec);
    need(
        within(co.request_timeout, 100, 300_000),
        "coordinator.request_timeout",
        "expected a duration from 100ms to 5m",
    );
    need(within(co.pairing_retry, 100, 3_600_000), "coordinator.pairing_retry", sec);
    need(within(co.reconnect_max_delay, 100, 3_600_000), "coordinator.reconnect_max_delay", sec);
    let w = &c.wasm;
    need(within(w.fetch_timeout, 100, 3_600_000), "wasm.fetch_timeout", sec);
    need(within(w.epoch_tick, 1, 1000), "wasm.epoch_tick", "expected a duration from 1ms to 1s");
    bad.into_iter()
        .map(|(key, message)| Problem {
            key: Some(key.to_string()),
            position: span_of(doc, key).map(|s| line_col(text, s.start)),
            message,
        })
        .collect()
}

/// Applies the `ISLAND_*` environment overrides (and `HF_TOKEN` when no token is set).
///
/// | variable | key |
/// |---|---|
/// | `ISLAND_HOST_ID` | `host_id` |
/// | `ISLAND_HOST_NAME` | `host.name` |
/// | `ISLAND_REGION` | `host.region` |
/// | `ISLAND_NATS_URL` | `coordinator.nats_url` |
/// | `ISLAND_API_URL` | `coordinator.api_url` |
/// | `ISLAND_MODEL_CACHE_DIR` | `model_cache.cache_dir` |
/// | `ISLAND_MAX_CACHE_GB` | `model_cache.max_cache_gb` |
/// | `ISLAND_HF_TOKEN`, then `HF_TOKEN` | `model_cache.hf_token` |
/// | `ISLAND_HF_ENDPOINT`, then `HF_ENDPOINT` | `model_cache.hf_endpoint` |
/// | `ISLAND_SHUTDOWN_GRACE` | `agent.shutdown_grace` |
///
/// # Errors
/// [`ConfigError::Env`] naming the variable whose value is bad.
pub fn env_overrides(c: &mut Config, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    fn set<T: std::str::FromStr<Err = E>, E: ToString>(
        env: &impl Fn(&str) -> Option<String>,
        var: &str,
        slot: &mut T,
    ) -> Result<(), ConfigError> {
        if let Some(v) = env(var) {
            *slot = v.parse().map_err(|e: E| ConfigError::Env { var: var.into(), message: e.to_string() })?;
        }
        Ok(())
    }
    let opt = |var: &str| env(var).filter(|v| !v.trim().is_empty());
    if let Some(v) = opt("ISLAND_HOST_ID") {
        c.host_id = Some(v);
    }
    if let Some(v) = opt("ISLAND_HOST_NAME") {
        c.host.name = Some(v);
    }
    set(&env, "ISLAND_REGION", &mut c.host.region)?;
    set(&env, "ISLAND_NATS_URL", &mut c.coordinator.nats_url)?;
    if let Some(v) = opt("ISLAND_API_URL") {
        c.coordinator.api_url =
            Some(v.parse().map_err(|m| ConfigError::Env { var: "ISLAND_API_URL".into(), message: m })?);
    }
    if let Some(v) = opt("ISLAND_MODEL_CACHE_DIR") {
        c.model_cache.cache_dir = Some(v.into());
    }
    if let Some(v) = opt("ISLAND_MAX_CACHE_GB") {
        let gb = v.parse::<u64>().map_err(|_| format!("expected a whole number of GB, found \"{v}\""));
        let gb = gb.and_then(super::Bounded::new);
        c.model_cache.max_cache_gb =
            gb.map_err(|m| ConfigError::Env { var: "ISLAND_MAX_CACHE_GB".into(), message: m })?;
    }
    if let Some(v) =
        opt("ISLAND_HF_TOKEN").or_else(|| c.model_cache.hf_token.is_none().then(|| opt("HF_TOKEN")).flatten())
    {
        c.model_cache.hf_token = Some(super::Secret::new(v));
    }
    let endpoint_var = ["ISLAND_HF_ENDPOINT", "HF_ENDPOINT"].into_iter().find(|v| opt(v).is_some());
    // `HF_ENDPOINT` is the Hugging Face tools' own variable: a config value wins over it.
    if let Some(var) = endpoint_var.filter(|v| *v == "ISLAND_HF_ENDPOINT" || c.model_cache.hf_endpoint.is_none()) {
        let v = opt(var).unwrap_or_default();
        c.model_cache.hf_endpoint = Some(v.parse().map_err(|m| ConfigError::Env { var: var.into(), message: m })?);
    }
    if let Some(v) = opt("ISLAND_SHUTDOWN_GRACE") {
        c.agent.shutdown_grace = humantime::parse_duration(&v)
            .map_err(|e| ConfigError::Env { var: "ISLAND_SHUTDOWN_GRACE".into(), message: e.to_string() })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        parse(text, Path::new("/x/config.toml"))
    }

    fn err(text: &str) -> String {
        parse_str(text).unwrap_err().to_string()
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let e = err("[host]\nname = \"x\n");
        assert!(e.starts_with("/x/config.toml:2:"), "{e}");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let e = err("[workload.resource_limits]\nmemory_mb = \"lots\"\n");
        assert!(e.contains("/x/config.toml:2:13: `workload.resource_limits.memory_mb`"), "{e}");
    }

    #[test]
    fn bad_values_name_key_position_and_expectation() {
        let cases = [
            ("[pricing]\ndefault_price = \"-1\"\n", "`pricing.default_price`", "negative"),
            ("[pricing.workloads]\n\"llm\" = \"cheap\"\n", "`pricing.workloads.llm`", "expected a price"),
            ("[workload.resource_limits]\nmemory_mb = 0\n", "`workload.resource_limits.memory_mb`", "from 16"),
            ("[workload]\nsandbox_tier = \"wide-open\"\n", "`workload.sandbox_tier`", "restricted"),
            ("[coordinator]\nnats_url = \"http://x:4222\"\n", "`coordinator.nats_url`", "nats:// or tls://"),
            (
                "[coordinator]\nnats_url = \"nats://a:1,nat://b:2\"\n",
                "`coordinator.nats_url`",
                "server 2 of 2 in the list: expected",
            ),
            ("[preload]\nmodels = [\"hf://\"]\n", "`preload.models`", "names no repository"),
            ("[agent]\nshutdown_grace = \"2h\"\n", "`agent.shutdown_grace`", "up to 1h"),
        ];
        for (text, key, expect) in cases {
            let e = err(text);
            assert!(e.contains(":2:") && e.contains(key) && e.contains(expect), "{text:?} gave {e}");
        }
    }

    #[test]
    fn unknown_keys_warn_with_a_suggestion() {
        let (_, w) = parse_str("[model_cache]\nmax_cache_size = 5\n[host]\nhost_id = \"abc\"\n").unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("/x/config.toml:2:1:") && w[0].contains("did you mean `max_cache_gb`?"), "{w:?}");
        assert!(w[1].contains("`host.host_id`") && w[1].contains("top level"), "{w:?}");
    }

    #[test]
    fn env_overrides_apply_and_name_bad_variables() {
        let mut c = Config::default();
        let env = |k: &str| match k {
            "ISLAND_NATS_URL" => Some("nats://127.0.0.1:4222".to_string()),
            "HF_TOKEN" => Some("hf_x".to_string()),
            _ => None,
        };
        env_overrides(&mut c, env).unwrap();
        assert_eq!(c.coordinator.nats_url.expose(), "nats://127.0.0.1:4222");
        assert_eq!(c.model_cache.hf_token.unwrap().expose(), "hf_x");
        let bad = env_overrides(&mut Config::default(), |k| (k == "ISLAND_MAX_CACHE_GB").then(|| "lots".into()));
        assert!(bad.unwrap_err().to_string().starts_with("environment variable ISLAND_MAX_CACHE_GB"));
        let hf = |k: &str| (k == "HF_ENDPOINT").then(|| "http://127.0.0.1:9/hf".to_string());
        let mut c = Config::default();
        env_overrides(&mut c, hf).unwrap();
        assert_eq!(c.model_cache.hf_endpoint.as_ref().map(|u| u.as_str()), Some("http://127.0.0.1:9/hf"));
        c.model_cache.hf_endpoint = Some("https://mirror.example".parse().unwrap());
        env_overrides(&mut c, hf).unwrap();
        assert_eq!(
            c.model_cache.hf_endpoint.unwrap().as_str(),
            "https://mirror.example",
            "the file wins over HF_ENDPOINT"
        );
        let bad = env_overrides(&mut Config::default(), |k| (k == "ISLAND_HF_ENDPOINT").then(|| "hf.co".into()));
        assert!(bad.unwrap_err().to_string().contains("ISLAND_HF_ENDPOINT"));
        let bad = env_overrides(&mut Config::default(), |k| (k == "ISLAND_MAX_CACHE_GB").then(|| "lots".into()));
        assert!(bad.unwrap_err().to_string().starts_with("environment variable ISLAND_MAX_CACHE_GB"));
    }

    #[test]
    fn overrides_are_validated_like_the_file_and_name_the_variable() {
        let mut c = Config::default();
        env_overrides(&mut c, |k| (k == "ISLAND_SHUTDOWN_GRACE").then(|| "5h".into())).unwrap();
        let e = validate_overridden(&c).unwrap_err().to_string();
        assert!(
            e.contains("ISLAND_SHUTDOWN_GRACE") && e.contains("`agent.shutdown_grace` expected a duration up to 1h"),
            "{e}"
        );
        let mut c = Config::default();
        env_overrides(&mut c, |k| (k == "ISLAND_HOST_ID").then(|| "a.b".into())).unwrap();
        let e = validate_overridden(&c).unwrap_err().to_string();
        assert!(e.contains("ISLAND_HOST_ID") && e.contains("`host_id` must be one NATS subject token"), "{e}");
        assert!(validate_overridden(&Config::default()).is_ok());
    }

    #[test]
    fn a_host_id_that_cannot_be_a_subject_token_is_refused_with_its_key() {
        for bad in ["a.b", "a b", "a*", ">", "x/y", "tab\there"] {
            let e = err(&format!("host_id = \"{bad}\"\n"));
            assert!(e.contains(":1:") && e.contains("`host_id`") && e.contains("NATS subject token"), "{bad}: {e}");
        }
        assert!(parse_str("host_id = \"island-7_B\"\n").is_ok());
    }
}
