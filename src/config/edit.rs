//! Changing the configuration file on the owner's behalf (from the desktop UI or the CLI):
//! the owner's comments and layout stay, the result is validated before anything is
//! written, and the write is atomic.

use std::collections::BTreeMap;
use std::path::Path;

use toml_edit::{DocumentMut, Item, Table, Value, value};

use super::NatsUrl;
use super::host_controls::{Day, Hours};
use super::load::{Loaded, load, parse};
use super::template::TEMPLATE;
use super::{Bounded, ConfigError, Price};
use crate::fsutil::write_private;

/// One change to the configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigEdit {
    /// Set (`Some`) or remove (`None`) an asking price; `workload: None` is the default price.
    SetPrice {
        /// The Cargo slug, or `None` for `pricing.default_price`.
        workload: Option<String>,
        /// The price, or `None` to remove it.
        price: Option<Price>,
    },
    /// Choose the GPUs exposed to Cargos (`workload.gpu_devices`).
    SetGpuDevices(Vec<String>),
    /// `workload.resource_limits.memory_mb`.
    SetMemoryMb(u64),
    /// `workload.resource_limits.cpu_percent` (`None`: unlimited).
    SetCpuPercent(Option<u64>),
    /// `workload.resource_limits.network_disabled`.
    SetNetworkDisabled(bool),
    /// `model_cache.max_cache_gb`.
    SetMaxCacheGb(u64),
    /// `agent.max_concurrent_jobs` (`None`: from the hardware).
    SetMaxConcurrentJobs(Option<u64>),
    /// `host.name` (`None`: the system host name).
    SetHostName(Option<String>),
    /// `host.region` (`auto`: the coordinator places the Island by its address).
    SetRegion(String),
    /// `coordinator.nats_url`; a URL without a password keeps the one already in the file.
    SetNatsUrl(String),
    /// `coordinator.nats_url` without its user and password (once they are stored elsewhere).
    ForgetNatsCredentials,
    /// `host_controls.max_gpu_temp_c`.
    SetMaxGpuTemp(u64),
    /// `host_controls.pause_on_battery`.
    SetPauseOnBattery(bool),
    /// `host_controls.schedule` (empty: always hosting).
    SetSchedule(BTreeMap<Day, Vec<Hours>>),
}

/// Writes the template to `path` unless a file is already there.
///
/// # Errors
/// [`ConfigError::Exists`] when the file exists (it is left alone), [`ConfigError::Write`].
pub fn init_file(path: &Path) -> Result<(), ConfigError> {
    if path.exists() {
        return Err(ConfigError::Exists { path: path.to_path_buf() });
    }
    write_private(path, TEMPLATE.as_bytes()).map_err(|source| ConfigError::Write { path: path.to_path_buf(), source })
}

/// Applies `edits` to the file at `path` (the template when it does not exist yet), checks
/// the result and writes it atomically; returns the new effective configuration.
///
/// # Errors
/// [`ConfigError::BadEdit`] for a value out of range, [`ConfigError::Invalid`] when the file
/// was already invalid, read and write errors. Nothing is written on error.
pub fn apply_edits(path: &Path, edits: &[ConfigEdit]) -> Result<Loaded, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => TEMPLATE.to_string(),
        Err(source) => return Err(ConfigError::Read { path: path.to_path_buf(), source }),
    };
    parse(&text, path)?;
    let mut doc: DocumentMut = text.parse().map_err(|_| ConfigError::Read {
        path: path.to_path_buf(),
        source: std::io::Error::other("the file changed while it was read"),
    })?;
    for edit in edits {
        apply(&mut doc, edit)?;
    }
    let new_text = doc.to_string();
    parse(&new_text, path)?;
    write_private(path, new_text.as_bytes())
        .map_err(|source| ConfigError::Write { path: path.to_path_buf(), source })?;
    load(path)
}

fn check<const MIN: u64, const MAX: u64>(key: &str, v: u64) -> Result<i64, ConfigError> {
    Bounded::<MIN, MAX>::new(v)
        .map(|b| b.get() as i64)
        .map_err(|message| ConfigError::BadEdit { key: key.into(), message })
}

fn apply(doc: &mut DocumentMut, edit: &ConfigEdit) -> Result<(), ConfigError> {
    match edit {
        ConfigEdit::SetPrice { workload: None, price } => {
            set(doc, &["pricing"], "default_price", price.map(|p| Value::from(p.to_string())));
        }
        ConfigEdit::SetPrice { workload: Some(slug), price } => {
            if slug.trim().is_empty() {
                let message = "a Cargo slug must not be empty".into();
                return Err(ConfigError::BadEdit { key: "pricing.workloads".into(), message });
            }
            set(doc, &["pricing", "workloads"], slug, price.map(|p| Value::from(p.to_string())));
        }
        ConfigEdit::SetGpuDevices(ids) => {
            let arr: toml_edit::Array = ids.iter().map(String::as_str).collect();
            set(doc, &["workload"], "gpu_devices", Some(Value::Array(arr)));
        }
        ConfigEdit::SetMemoryMb(mb) => {
            let v = check::<16, 16_777_216>("workload.resource_limits.memory_mb", *mb)?;
            set(doc, &["workload", "resource_limits"], "memory_mb", Some(v.into()));
        }
        ConfigEdit::SetCpuPercent(p) => {
            let v = p.map(|p| check::<1, 100_000>("workload.resource_limits.cpu_percent", p)).transpose()?;
            set(doc, &["workload", "resource_limits"], "cpu_percent", v.map(Value::from));
        }
        ConfigEdit::SetNetworkDisabled(b) => {
            set(doc, &["workload", "resource_limits"], "network_disabled", Some((*b).into()));
        }
        ConfigEdit::SetMaxCacheGb(gb) => {
            let v = check::<1, 1_000_000>("model_cache.max_cache_gb", *gb)?;
            set(doc, &["model_cache"], "max_cache_gb", Some(v.into()));
        }
        ConfigEdit::SetMaxConcurrentJobs(n) => {
            let v = n.map(|n| check::<1, 1024>("agent.max_concurrent_jobs", n)).transpose()?;
            set(doc, &["agent"], "max_concurrent_jobs", v.map(Value::from));
        }
        ConfigEdit::SetHostName(name) => {
            let name = name.as_deref().map(str::trim).filter(|n| !n.is_empty());
            if let Some(n) = name {
                plain_text("host.name", n, 64, |c| !c.is_control())?;
            }
            set(doc, &["host"], "name", name.map(Value::from));
        }
        ConfigEdit::SetRegion(region) => {
            let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            plain_text("host.region", region.trim(), 32, ok)?;
            set(doc, &["host"], "region", Some(region.trim().into()));
        }
        ConfigEdit::SetNatsUrl(url) => {
            let bad = |message| ConfigError::BadEdit { key: "coordinator.nats_url".into(), message };
            let new: NatsUrl = url.parse().map_err(bad)?;
            let old = doc.get("coordinator").and_then(|c| c.get("nats_url")).and_then(Item::as_str);
            // The template's placeholder password is not carried over: it is never sent.
            let new = match old.and_then(|o| o.parse::<NatsUrl>().ok()) {
                Some(old) if !super::load::has_placeholder_password(&old) => new.keeping_credentials_of(&old),
                _ => new,
            };
            set(doc, &["coordinator"], "nats_url", Some(new.expose().into()));
        }
        ConfigEdit::ForgetNatsCredentials => {
            let old = doc.get("coordinator").and_then(|c| c.get("nats_url")).and_then(Item::as_str);
            if let Some(old) = old.and_then(|o| o.parse::<NatsUrl>().ok()) {
                set(doc, &["coordinator"], "nats_url", Some(old.without_credentials().into()));
            }
        }
        ConfigEdit::SetMaxGpuTemp(c) => {
            let v = check::<40, 120>("host_controls.max_gpu_temp_c", *c)?;
            set(doc, &["host_controls"], "max_gpu_temp_c", Some(v.into()));
        }
        ConfigEdit::SetPauseOnBattery(b) => set(doc, &["host_controls"], "pause_on_battery", Some((*b).into())),
        ConfigEdit::SetSchedule(days) => set_schedule(doc, days),
    }
    Ok(())
}

/// Checks a short piece of text: not empty, at most `max` characters, each one `ok`.
fn plain_text(key: &str, text: &str, max: usize, ok: impl Fn(char) -> bool) -> Result<(), ConfigError> {
    let message = if text.is_empty() {
        "must not be empty".to_string()
    } else if text.chars().count() > max {
        format!("must be at most {max} characters")
    } else if let Some(c) = text.chars().find(|c| !ok(*c)) {
        format!("must not contain {c:?}")
    } else {
        return Ok(());
    };
    Err(ConfigError::BadEdit { key: key.into(), message })
}

/// Replaces `[host_controls.schedule]` (days in week order), or removes it when empty.
fn set_schedule(doc: &mut DocumentMut, days: &BTreeMap<Day, Vec<Hours>>) {
    set(doc, &["host_controls"], "schedule", None);
    if days.is_empty() {
        return;
    }
    let mut table = Table::new();
    for (day, hours) in days {
        let arr: toml_edit::Array = hours.iter().map(|h| h.to_string()).collect();
        table.insert(day.key(), value(arr));
    }
    let controls = doc["host_controls"].as_table_mut().expect("set() made the table");
    controls.insert("schedule", Item::Table(table));
}

/// Sets or removes `key` in the table at `tables`, creating tables as needed and keeping
/// the comment that followed the old value.
fn set(doc: &mut DocumentMut, tables: &[&str], key: &str, new: Option<Value>) {
    let mut table: &mut Table = doc.as_table_mut();
    for name in tables {
        let item = table.entry(name).or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(false);
            Item::Table(t)
        });
        if !item.is_table() {
            *item = Item::Table(Table::new());
        }
        table = item.as_table_mut().expect("just made a table");
    }
    match new {
        None => {
            table.remove(key);
        }
        Some(mut v) => {
            if let Some(old) = table.get(key).and_then(Item::as_value) {
                *v.decor_mut() = old.decor().clone();
            }
            table.insert(key, value(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_keep_comments_and_validate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        init_file(&path).unwrap();
        let loaded = apply_edits(
            &path,
            &[
                ConfigEdit::SetMemoryMb(2048),
                ConfigEdit::SetPrice { workload: Some("gguf-mistral-7b".into()), price: Some("2.5".parse().unwrap()) },
                ConfigEdit::SetPrice { workload: None, price: Some("1.0".parse().unwrap()) },
                ConfigEdit::SetGpuDevices(vec!["0".into(), "1".into()]),
            ],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("memory_mb = 2048       # Max memory per Cargo container"), "{text}");
        assert!(text.contains("# Archipelag.io Island Configuration"));
        assert!(text.contains("gpu_devices = [\"0\", \"1\"]       # e.g."), "{text}");
        let c = loaded.config;
        assert_eq!(c.workload.resource_limits.memory_mb.get(), 2048);
        assert_eq!(c.pricing.workloads["gguf-mistral-7b"].to_string(), "2.5");
        assert_eq!(c.pricing.default_price.unwrap().to_string(), "1.0");
        assert_eq!(c.workload.gpu_devices, ["0", "1"]);
    }

    #[test]
    fn a_bad_edit_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        init_file(&path).unwrap();
        let before = std::fs::read_to_string(&path).unwrap();
        let e = apply_edits(&path, &[ConfigEdit::SetMemoryMb(0)]).unwrap_err();
        assert!(e.to_string().contains("workload.resource_limits.memory_mb"), "{e}");
        let e = apply_edits(&path, &[ConfigEdit::SetGpuDevices(vec!["first".into()])]).unwrap_err();
        assert!(e.to_string().contains("gpu_devices"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    }

    #[test]
    fn host_coordinator_and_host_control_edits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[coordinator]\nnats_url = \"tls://island:S3cret@old.example:4222\" # from the installer\n",
        )
        .unwrap();
        let schedule = BTreeMap::from([
            (Day::Mon, vec!["09:00-17:00".parse().unwrap()]),
            (Day::Sat, vec!["22:00-06:00".parse().unwrap(), "12:00-13:00".parse().unwrap()]),
        ]);
        let c = apply_edits(
            &path,
            &[
                ConfigEdit::SetHostName(Some("  studio-pc ".into())),
                ConfigEdit::SetRegion("eu-west".into()),
                ConfigEdit::SetNatsUrl("tls://new.example:4222".into()),
                ConfigEdit::SetMaxGpuTemp(80),
                ConfigEdit::SetPauseOnBattery(false),
                ConfigEdit::SetSchedule(schedule.clone()),
            ],
        )
        .unwrap()
        .config;
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("nats_url = \"tls://island:S3cret@new.example:4222\" # from the installer"), "{text}");
        assert_eq!((c.host.name.as_deref(), c.host.region.as_str()), (Some("studio-pc"), "eu-west"));
        assert_eq!(c.host_controls.max_gpu_temp_c.get(), 80);
        assert!(!c.host_controls.pause_on_battery);
        assert_eq!(c.host_controls.schedule, schedule);
        assert!(text.contains("sat = [\"22:00-06:00\", \"12:00-13:00\"]"), "{text}");

        let c = apply_edits(&path, &[ConfigEdit::SetHostName(None), ConfigEdit::SetSchedule(BTreeMap::new())]).unwrap();
        assert_eq!(c.config.host.name, None);
        assert!(c.config.host_controls.schedule.is_empty());
        let given = "tls://other:Pw2@new.example:4222";
        let c = apply_edits(&path, &[ConfigEdit::SetNatsUrl(given.into())]).unwrap();
        assert_eq!(c.config.coordinator.nats_url.expose(), given, "a URL with its own password replaces the old one");
    }

    #[test]
    fn bad_host_settings_name_the_key_and_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        init_file(&path).unwrap();
        let before = std::fs::read_to_string(&path).unwrap();
        for (edit, key) in [
            (ConfigEdit::SetRegion("eu west".into()), "host.region"),
            (ConfigEdit::SetRegion(String::new()), "host.region"),
            (ConfigEdit::SetHostName(Some("x".repeat(65))), "host.name"),
            (ConfigEdit::SetNatsUrl("http://example.com".into()), "coordinator.nats_url"),
            (ConfigEdit::SetMaxGpuTemp(200), "host_controls.max_gpu_temp_c"),
        ] {
            let e = apply_edits(&path, &[edit]).unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    }

    #[test]
    fn init_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "# mine\n").unwrap();
        assert!(matches!(init_file(&path), Err(ConfigError::Exists { .. })));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
    }
}
