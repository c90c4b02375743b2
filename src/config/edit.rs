//! Changing the configuration file on the owner's behalf (from the desktop UI or the CLI):
//! the owner's comments and layout stay, the result is validated before anything is
//! written, and the write is atomic.

use std::path::Path;

use toml_edit::{DocumentMut, Item, Table, Value, value};

use super::load::{Loaded, load, parse};
use super::template::TEMPLATE;
use super::{Bounded, ConfigError, Price};
use crate::fsutil::write_atomic;

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
}

/// Writes the template to `path` unless a file is already there.
///
/// # Errors
/// [`ConfigError::Exists`] when the file exists (it is left alone), [`ConfigError::Write`].
pub fn init_file(path: &Path) -> Result<(), ConfigError> {
    if path.exists() {
        return Err(ConfigError::Exists { path: path.to_path_buf() });
    }
    write_atomic(path, TEMPLATE.as_bytes()).map_err(|source| ConfigError::Write { path: path.to_path_buf(), source })
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
    write_atomic(path, new_text.as_bytes())
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
    }
    Ok(())
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
    fn init_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "# mine\n").unwrap();
        assert!(matches!(init_file(&path), Err(ConfigError::Exists { .. })));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
    }
}
