//! Loading, checking and writing the configuration, through the library and through the
//! `island` binary (exit codes and messages as the owner sees them).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{island, temp_home};
use island::config::template::TEMPLATE;
use island::config::{self, Config};

#[test]
fn the_guides_template_parses_to_the_documented_defaults() {
    let (c, warnings) = config::parse(TEMPLATE, Path::new("config.toml")).expect("template is valid");
    let d = Config::default();
    assert_eq!(c.host.name, None, "the template's example name is commented out");
    assert_eq!(c.host.region, "auto");
    assert_eq!(c.coordinator.nats_url.without_credentials(), "tls://sail.archipelag.io:4222");
    assert!(c.coordinator.nats_url.credentials().is_none(), "the template carries no password");
    assert_eq!(c.coordinator.api_url.as_ref().map(|u| u.as_str()), Some("https://app.archipelag.io"));
    assert_eq!(c.workload.llm_chat_image, "ghcr.io/archipelag-io/llm-chat:latest");
    assert!(c.workload.gpu_devices.is_empty());
    let limits = &c.workload.resource_limits;
    assert_eq!(limits.memory_mb.get(), 4096);
    assert!(limits.read_only_rootfs && limits.network_disabled);
    assert_eq!(limits.tmpfs_size_mb.get(), 256);
    assert_eq!(limits.cpu_percent, None);
    assert!(!c.cache.enable_preload);
    assert_eq!(c.cache.max_cached_images, 10);
    assert_eq!(c.model_cache.max_cache_gb.get(), 20);
    assert_eq!(c.model_cache.cache_dir, None);
    assert!(c.preload.enabled && c.preload.models.is_empty());
    assert_eq!(c.pricing.default_price, None);
    assert!(c.pricing.workloads.is_empty());
    assert!(c.signing.enabled && !c.signing.require_signature);
    assert!(c.registry.enabled && !c.registry.require_digest);
    assert_eq!(c.agent.shutdown_grace, Duration::from_secs(30));
    // Everything the template sets equals the defaults, except what the guide fills in.
    let mut expected = d.clone();
    expected.host = c.host.clone();
    expected.coordinator = c.coordinator.clone();
    assert_eq!(c, expected);
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn an_older_templates_placeholders_are_never_used() {
    let old = TEMPLATE
        .replace("tls://sail.archipelag.io:4222", "tls://island:PASSWORD@sail.archipelag.io:4222")
        .replace("# name = \"my-machine\"", "name = \"my-machine\"");
    let (c, warnings) = config::parse(&old, Path::new("config.toml")).expect("the older template is valid");
    assert!(c.coordinator.nats_url.credentials().is_none(), "PASSWORD is never sent");
    assert_eq!(c.coordinator.nats_url.expose(), "tls://sail.archipelag.io:4222");
    assert_eq!(c.host.name, None, "the example name is not registered");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("placeholder password") && warnings[0].contains("island credentials set"));
    assert!(warnings[1].contains("my-machine"));
}

#[cfg(unix)]
#[test]
fn the_config_file_is_created_private_and_tightened_when_it_holds_a_password() {
    use std::os::unix::fs::PermissionsExt;
    let home = temp_home();
    let path = home.dir.path().join("config.toml");
    config::init_file(&path).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600, "created readable by its owner only");
    config::apply_edits(&path, &[config::ConfigEdit::SetMemoryMb(2048)]).unwrap();
    assert_eq!(mode(&path), 0o600, "an edit keeps it private");
    // A file made by hand, readable by all, with a real password: tightened on load, and said.
    std::fs::write(&path, "[coordinator]\nnats_url = \"tls://island:s3cret@example.org:4222\"\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loaded = config::load(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert!(
        loaded.warnings.iter().any(|w| w.contains("readable by others (mode 644)") && w.contains("mode 600")),
        "{:?}",
        loaded.warnings
    );
    let again = config::load(&path).unwrap().warnings;
    assert!(!again.iter().any(|w| w.contains("readable by others")), "said once, when it was changed: {again:?}");
    assert!(again.iter().any(|w| w.contains("island credentials import")), "the password in the URL is: {again:?}");
    // Without a password, the owner's choice of mode stands.
    std::fs::write(&path, "[coordinator]\nnats_url = \"tls://example.org:4222\"\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    config::load(&path).unwrap();
    assert_eq!(mode(&path), 0o644);
}

/// Writes `text` as a config file and runs `island config check` on it.
fn check(text: &str) -> (Option<i32>, String, String, std::path::PathBuf) {
    let home = temp_home();
    let path = home.dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    // `config check` never connects, so the file's own URL may stand.
    let out = island(home.dir.path())
        .args(["config", "check", "--config"])
        .arg(&path)
        .env_remove("ISLAND_NATS_URL")
        .output()
        .unwrap();
    let path = home.dir.keep().join("config.toml");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into(), path)
}

#[test]
fn each_bad_config_names_file_line_column_key_and_expectation_and_exits_2() {
    let cases = [
        ("[host]\nname = \"unterminated\n", "2:", None, "string"),
        ("[pricing]\ndefault_price = \"-1.0\"\n", "2:17", Some("pricing.default_price"), "cannot be negative"),
        (
            "[pricing.workloads]\n\"llm-chat\" = \"two\"\n",
            "2:14",
            Some("pricing.workloads.llm-chat"),
            "expected a price",
        ),
        ("[workload.resource_limits]\nmemory_mb = 0\n", "2:13", Some("workload.resource_limits.memory_mb"), "from 16"),
        (
            "[workload.resource_limits]\nmemory_mb = \"big\"\n",
            "2:13",
            Some("workload.resource_limits.memory_mb"),
            "expected a whole number from 16",
        ),
        ("[workload]\nsandbox_tier = \"yolo\"\n", "2:16", Some("workload.sandbox_tier"), "`restricted`, `standard`"),
        ("[coordinator]\nnats_url = \"https://x:4222\"\n", "2:12", Some("coordinator.nats_url"), "nats:// or tls://"),
        ("[preload]\nmodels = [\"hf://\"]\n", "2:", Some("preload.models"), "names no repository"),
        ("[preload]\nmodels = [\"hf://:model.gguf\"]\n", "2:", Some("preload.models"), "names no repository"),
        (
            "[[signing.trusted_keys]]\nkey_id = \"k\"\npublic_key = \"-----BEGIN PUBLIC KEY-----\"\nalgorithm = \"rsa\"\n",
            "1:",
            Some("signing.trusted_keys"),
            "ecdsa-p256, ecdsa-p384 or ed25519",
        ),
    ];
    for (text, place, key, expect) in cases {
        let (code, stdout, stderr, path) = check(text);
        assert_eq!(code, Some(2), "{text:?}: {stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with(&format!("error: {}:{place}", path.display())), "{text:?}: {stderr}");
        if let Some(key) = key {
            assert!(first.contains(&format!("`{key}`")), "{text:?} should name {key}: {stderr}");
        }
        assert!(stderr.contains(expect), "{text:?} should say {expect:?}: {stderr}");
        assert!(stdout.is_empty(), "nothing printed as if valid: {stdout}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "the file is untouched");
    }
}

#[test]
fn unknown_keys_warn_with_the_nearest_key_and_do_not_fail() {
    let (code, _, stderr, path) = check("[model_cache]\nmax_cache = 5\n[workload]\nllm_chat_imgae = \"x\"\n");
    assert_eq!(code, Some(0), "{stderr}");
    let p = path.display();
    assert!(
        stderr.contains(&format!(
            "warning: {p}:2:1: unknown key `model_cache.max_cache` is ignored; did you mean `max_cache_gb`?"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("`workload.llm_chat_imgae` is ignored; did you mean `llm_chat_image`?"), "{stderr}");
}

#[test]
fn config_check_prints_the_effective_config_without_secrets() {
    let text = "[coordinator]\nnats_url = \"tls://island:Sup3rS3cret-pw@sail.example:4222\"\n\
                [model_cache]\nhf_token = \"hf_TOPSECRETTOKEN\"\n";
    let (code, stdout, stderr, _) = check(text);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("nats_url = \"tls://island:***@sail.example:4222\""), "{stdout}");
    assert!(stdout.contains("hf_token = \"***\""), "{stdout}");
    assert!(stdout.contains("memory_mb = 4096"), "effective values, defaults included: {stdout}");
    for secret in ["Sup3rS3cret-pw", "hf_TOPSECRETTOKEN"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "{secret} leaked");
    }
}

#[test]
fn config_init_writes_the_template_once_and_never_overwrites() {
    let home = temp_home();
    let out = island(home.dir.path()).args(["config", "init"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let path = home.dir.path().join("config.toml");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), TEMPLATE);
    std::fs::write(&path, "# the owner's own file\n").unwrap();
    let again = island(home.dir.path()).args(["config", "init"]).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# the owner's own file\n");
}

#[test]
fn a_missing_file_for_check_says_how_to_create_one() {
    let home = temp_home();
    let out = island(home.dir.path()).args(["config", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("island config init"));
}

#[test]
fn environment_overrides_reach_the_effective_config_and_bad_ones_exit_2() {
    let home = temp_home();
    island(home.dir.path()).args(["config", "init"]).output().unwrap();
    let out = island(home.dir.path())
        .args(["config", "check"])
        .env("ISLAND_NATS_URL", "nats://127.0.0.1:4333")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("nats_url = \"nats://127.0.0.1:4333\""));
    let bad = island(home.dir.path()).args(["config", "check"]).env("ISLAND_NATS_URL", "localhost").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("environment variable ISLAND_NATS_URL"));
}

#[test]
fn no_arguments_prints_help_and_exits_0_and_version_works() {
    let home = temp_home();
    let out = island(home.dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--agent") && help.contains("config"), "{help}");
    let v = island(home.dir.path()).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), format!("island {}", island::VERSION));
}

#[test]
fn hardware_prints_what_was_detected() {
    let home = temp_home();
    let out = island(home.dir.path()).arg("hardware").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Detected capabilities: ") && text.contains("Hardware tier: "), "{text}");
    let json = island(home.dir.path()).args(["hardware", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(v["cpu_cores"].as_u64().unwrap() >= 1 && v["ram_mb"].as_u64().unwrap() > 0, "{v}");
    assert!(v["gpus"].is_array());
}

#[test]
fn the_agents_login_entry_appears_and_disappears_beside_the_desktops() {
    let home = temp_home();
    let dir = home.dir.path().join(".config/autostart");
    let entry = dir.join("Island Agent.desktop");
    let run = |action: &str| {
        let out = island(home.dir.path()).args(["autostart", action]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(run("status"), "off");
    run("on");
    if cfg!(target_os = "linux") {
        let text = std::fs::read_to_string(&entry).expect("the XDG autostart entry");
        assert!(text.contains("--agent") && text.contains("island"), "{text}");
        // The desktop app's own entry is another file: neither overwrites the other, and the
        // agent's status says that both are on.
        std::fs::write(dir.join("Island.desktop"), "[Desktop Entry]\nExec=island-desktop --hidden\n").unwrap();
        let both = run("status");
        assert!(both.starts_with("on\nNote: the desktop app starts at login too"), "{both}");
    }
    assert!(run("status").starts_with("on"));
    run("off");
    assert!(!entry.exists());
    assert_eq!(run("status").lines().next(), Some("off"));
    if cfg!(target_os = "linux") {
        assert!(dir.join("Island.desktop").exists(), "the desktop's entry is left alone");
    }
}
