//! The keys a configuration may hold, and the warning for one it may not: where it is and
//! the nearest known key (a close spelling in the same table, else the same name elsewhere).

use std::path::Path;

use toml_edit::Document;

use super::locate::{key_span_of, line_col};

/// Every key the configuration reads, by table; the unknown-key check and its suggestions
/// come from here. A unit test keeps it in step with the structs.
const KNOWN: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "host_id",
            "host",
            "coordinator",
            "workload",
            "cache",
            "model_cache",
            "preload",
            "pricing",
            "signing",
            "registry",
            "agent",
            "logs",
            "wasm",
            "host_controls",
        ],
    ),
    ("host_controls", &["max_gpu_temp_c", "temp_hysteresis_c", "pause_on_battery", "schedule"]),
    ("host", &["name", "region"]),
    (
        "coordinator",
        &[
            "nats_url",
            "api_url",
            "heartbeat_interval",
            "lease_interval",
            "lease_extend_seconds",
            "ack_wait",
            "max_deliver",
            "pull_wait",
            "stream_check_interval",
            "request_timeout",
            "pairing_retry",
            "max_job_bytes",
            "reconnect_max_delay",
        ],
    ),
    ("workload", &["llm_chat_image", "gpu_devices", "sandbox_tier", "job_timeout", "resource_limits"]),
    (
        "workload.resource_limits",
        &["memory_mb", "read_only_rootfs", "tmpfs_size_mb", "network_disabled", "cpu_percent"],
    ),
    ("cache", &["enable_preload", "max_cached_images", "preload_images", "warm_ttl_seconds"]),
    ("model_cache", &["max_cache_gb", "cache_dir", "hf_token", "hf_endpoint"]),
    ("preload", &["enabled", "models", "recommendations_interval"]),
    ("pricing", &["default_price", "workloads"]),
    (
        "signing",
        &["enabled", "require_signature", "keys_url", "trusted_keys", "unsigned_allowed_registries", "key_cache_path"],
    ),
    ("signing.trusted_keys", &["key_id", "public_key", "algorithm", "issuer"]),
    ("registry", &["enabled", "require_digest", "allowed"]),
    ("agent", &["shutdown_grace", "cancel_grace", "max_concurrent_jobs", "metrics_interval"]),
    ("logs", &["file_max_mb", "file_keep", "ring_lines"]),
    (
        "wasm",
        &[
            "max_module_bytes",
            "fetch_timeout",
            "require_hash",
            "allow_plain_http",
            "local_dir",
            "max_output_bytes",
            "epoch_tick",
            "max_run_time",
            "max_memory_mb",
            "max_cache_mb",
        ],
    ),
];

pub(super) fn unknown_key_warning(raw: &str, doc: &Document<&str>, text: &str, path: &Path) -> String {
    // serde_ignored numbers array elements (`signing.trusted_keys.0.x`); the schema does not.
    let key: Vec<&str> = raw.split('.').filter(|p| p.parse::<usize>().is_err()).collect();
    let key = key.join(".");
    let (parent, leaf) = key.rsplit_once('.').unwrap_or(("", &key));
    let place = key_span_of(doc, raw)
        .map(|s| {
            let (l, c) = line_col(text, s.start);
            format!(":{l}:{c}")
        })
        .unwrap_or_default();
    let mut msg = format!("{}{place}: unknown key `{key}` is ignored", path.display());
    if let Some(s) = suggestion(parent, leaf) {
        msg.push_str("; did you mean ");
        msg.push_str(&s);
        msg.push('?');
    }
    msg
}

/// The nearest known key, quoted: a close spelling in the same table, else the same name
/// in another table.
fn suggestion(parent: &str, leaf: &str) -> Option<String> {
    let siblings = KNOWN.iter().find(|(t, _)| *t == parent).map(|(_, k)| *k).unwrap_or(&[]);
    let close = siblings
        .iter()
        .map(|k| (strsim::jaro_winkler(leaf, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((_, k)) = close {
        return Some(format!("`{k}`"));
    }
    KNOWN.iter().find(|(_, keys)| keys.contains(&leaf)).map(|(t, _)| match *t {
        "" => format!("`{leaf}` at the top level, before any [table]"),
        t => format!("`{t}.{leaf}`"),
    })
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    #[test]
    #[allow(clippy::field_reassign_with_default)]
    fn every_serialized_key_is_known() {
        let mut c = Config::default();
        c.host_id = Some("h".into());
        c.host.name = Some("n".into());
        c.coordinator.api_url = Some("https://a".parse().unwrap());
        c.workload.sandbox_tier = Some(super::super::SandboxTier::Standard);
        c.workload.resource_limits.cpu_percent = Some(super::super::Bounded::new(100).unwrap());
        c.model_cache.cache_dir = Some("/m".into());
        c.model_cache.hf_token = Some(super::super::Secret::new("t"));
        c.model_cache.hf_endpoint = Some("https://hf.example".parse().unwrap());
        c.pricing.default_price = Some("1".parse().unwrap());
        c.signing.keys_url = Some("https://k".parse().unwrap());
        c.signing.key_cache_path = Some("/k".into());
        c.signing.trusted_keys.push(super::super::TrustedKey {
            key_id: "k".into(),
            public_key: "p".into(),
            algorithm: "a".into(),
            issuer: Some("i".into()),
        });
        c.agent.max_concurrent_jobs = Some(super::super::Bounded::new(2).unwrap());
        c.wasm.local_dir = Some("/w".into());
        c.host_controls.schedule.insert(super::super::host_controls::Day::Mon, vec!["09:00-17:00".parse().unwrap()]);
        c.wasm.max_run_time = Some(std::time::Duration::from_secs(1));
        c.wasm.max_memory_mb = Some(super::super::Bounded::new(64).unwrap());
        let value = toml::Value::try_from(&c).unwrap();
        fn walk(prefix: &str, v: &toml::Value, found: &mut Vec<(String, String)>) {
            if let toml::Value::Table(t) = v {
                for (k, inner) in t {
                    found.push((prefix.to_string(), k.clone()));
                    let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    if p != "pricing.workloads" && p != "host_controls.schedule" {
                        walk(&p, inner, found);
                    }
                }
            } else if let toml::Value::Array(a) = v {
                a.iter().for_each(|i| walk(prefix, i, found));
            }
        }
        let mut found = Vec::new();
        walk("", &value, &mut found);
        let known: usize = KNOWN.iter().map(|(_, k)| k.len()).sum();
        assert_eq!(found.len(), known, "KNOWN and the structs differ: {found:?}");
        for (table, key) in found {
            let listed = KNOWN.iter().any(|(t, keys)| *t == table && keys.contains(&key.as_str()));
            assert!(listed, "`{table}.{key}` is missing from KNOWN");
        }
    }
}
