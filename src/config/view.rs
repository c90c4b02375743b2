//! The owner's settings as a UI shows and changes them: [`SettingsView`] is the effective
//! configuration without any secret, and [`SettingsForm`] turns what a form sends (text,
//! as typed) into checked [`ConfigEdit`]s, naming the key of anything wrong.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::host_controls::{Day, Hours};
use super::{Config, ConfigEdit, ConfigError};

/// The settings screens' view of the configuration; no password or token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SettingsView {
    /// `host.name`, when the owner set one.
    pub host_name: Option<String>,
    /// The system's host name, used when `host.name` is unset.
    pub system_host_name: String,
    /// `host.region`.
    pub region: String,
    /// `coordinator.nats_url` without its user and password.
    pub coordinator_url: String,
    /// Whether `coordinator.nats_url` carries a password (the UI suggests the keyring).
    pub password_in_url: bool,
    /// `workload.resource_limits.memory_mb`.
    pub memory_mb: u64,
    /// `workload.resource_limits.cpu_percent` (`None`: unlimited).
    pub cpu_percent: Option<u64>,
    /// `workload.resource_limits.network_disabled`.
    pub network_disabled: bool,
    /// `agent.max_concurrent_jobs` (`None`: from the hardware).
    pub max_concurrent_jobs: Option<u64>,
    /// Where models are kept.
    pub model_cache_dir: PathBuf,
    /// `model_cache.max_cache_gb`.
    pub max_cache_gb: u64,
    /// `host_controls.max_gpu_temp_c`.
    pub max_gpu_temp_c: u64,
    /// `host_controls.temp_hysteresis_c`.
    pub temp_hysteresis_c: u64,
    /// `host_controls.pause_on_battery`.
    pub pause_on_battery: bool,
    /// `host_controls.schedule`, hours as `HH:MM-HH:MM`.
    pub schedule: BTreeMap<Day, Vec<String>>,
    /// `wasm.max_memory_mb` (`None`: each tier's own limit).
    pub wasm_max_memory_mb: Option<u64>,
    /// `cache.warm_ttl_seconds`: how long a Cargo that ran counts as warm.
    pub warm_ttl_seconds: u64,
    /// `agent.shutdown_grace`, ms: what Quit gives running jobs.
    pub shutdown_grace_ms: u64,
    /// Fields of this view that an environment variable sets (field → variable): saving
    /// them writes config.toml, but the variable still wins until it is unset.
    pub overridden: BTreeMap<String, String>,
}

/// The view's fields that `ISLAND_*` variables override (see `config::env_overrides`).
const OVERRIDES: [(&str, &str); 5] = [
    ("host_name", "ISLAND_HOST_NAME"),
    ("region", "ISLAND_REGION"),
    ("coordinator_url", "ISLAND_NATS_URL"),
    ("model_cache_dir", "ISLAND_MODEL_CACHE_DIR"),
    ("max_cache_gb", "ISLAND_MAX_CACHE_GB"),
];

fn overridden() -> BTreeMap<String, String> {
    OVERRIDES
        .iter()
        .filter(|(_, var)| std::env::var(var).is_ok_and(|v| !v.trim().is_empty()))
        .map(|(field, var)| (field.to_string(), var.to_string()))
        .collect()
}

impl SettingsView {
    /// The view of `config`; `model_cache_dir` is where the cache is when the config names none.
    pub fn new(config: &Config, model_cache_dir: PathBuf) -> SettingsView {
        let limits = &config.workload.resource_limits;
        let controls = &config.host_controls;
        SettingsView {
            host_name: config.host.name.clone(),
            system_host_name: sysinfo::System::host_name().unwrap_or_default(),
            region: config.host.region.clone(),
            coordinator_url: config.coordinator.nats_url.without_credentials(),
            password_in_url: config.coordinator.nats_url.credentials().is_some(),
            memory_mb: limits.memory_mb.get(),
            cpu_percent: limits.cpu_percent.map(|p| p.get()),
            network_disabled: limits.network_disabled,
            max_concurrent_jobs: config.agent.max_concurrent_jobs.map(|n| n.get()),
            model_cache_dir: config.model_cache.cache_dir.clone().unwrap_or(model_cache_dir),
            max_cache_gb: config.model_cache.max_cache_gb.get(),
            max_gpu_temp_c: controls.max_gpu_temp_c.get(),
            temp_hysteresis_c: controls.temp_hysteresis_c.get(),
            pause_on_battery: controls.pause_on_battery,
            schedule: controls.schedule.iter().map(|(d, h)| (*d, h.iter().map(Hours::to_string).collect())).collect(),
            wasm_max_memory_mb: config.wasm.max_memory_mb.map(|m| m.get()),
            warm_ttl_seconds: config.cache.warm_ttl_seconds,
            shutdown_grace_ms: config.agent.shutdown_grace.as_millis().try_into().unwrap_or(u64::MAX),
            overridden: overridden(),
        }
    }
}

/// What a settings form sends: every field is optional (absent: unchanged) and numbers
/// come as typed, so a wrong one is reported with its key rather than lost.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettingsForm {
    /// Empty: the system host name.
    pub host_name: Option<String>,
    /// `auto` or a region name.
    pub region: Option<String>,
    /// A `nats://` or `tls://` URL; without a password it keeps the one in the file.
    pub coordinator_url: Option<String>,
    /// Whole MB.
    pub memory_mb: Option<String>,
    /// Empty: unlimited.
    pub cpu_percent: Option<String>,
    /// Whether Cargos run without a network.
    pub network_disabled: Option<bool>,
    /// Empty: from the hardware.
    pub max_concurrent_jobs: Option<String>,
    /// Whole GB.
    pub max_cache_gb: Option<String>,
    /// °C.
    pub max_gpu_temp_c: Option<String>,
    /// Pause while on battery.
    pub pause_on_battery: Option<bool>,
    /// Day (`mon` … `sun`) → hours such as `09:00-17:00, 20:00-22:00`; an empty text
    /// leaves the day out. An empty map: always hosting.
    pub schedule: Option<BTreeMap<Day, String>>,
}

fn number(key: &str, text: &str) -> Result<u64, ConfigError> {
    text.trim().parse().map_err(|_| ConfigError::BadEdit {
        key: key.into(),
        message: format!("expected a whole number, found {:?}", text.trim()),
    })
}

fn optional_number(key: &str, text: &str) -> Result<Option<u64>, ConfigError> {
    if text.trim().is_empty() { Ok(None) } else { number(key, text).map(Some) }
}

fn schedule(days: &BTreeMap<Day, String>) -> Result<BTreeMap<Day, Vec<Hours>>, ConfigError> {
    let mut out = BTreeMap::new();
    for (day, text) in days {
        let hours: Vec<Hours> =
            text.split(',').filter(|h| !h.trim().is_empty()).map(str::parse).collect::<Result<_, String>>().map_err(
                |message| ConfigError::BadEdit { key: format!("host_controls.schedule.{}", day.key()), message },
            )?;
        if !hours.is_empty() {
            out.insert(*day, hours);
        }
    }
    Ok(out)
}

impl SettingsForm {
    /// The edits this form asks for, in one batch (applied all together or not at all).
    ///
    /// # Errors
    /// [`ConfigError::BadEdit`] naming the key of the first value that is not a number or
    /// not valid hours.
    pub fn into_edits(self) -> Result<Vec<ConfigEdit>, ConfigError> {
        use ConfigEdit as E;
        const CPU: &str = "workload.resource_limits.cpu_percent";
        let edits = [
            self.host_name.map(|n| E::SetHostName(Some(n))),
            self.region.map(E::SetRegion),
            self.coordinator_url.map(E::SetNatsUrl),
            self.memory_mb.map(|t| number("workload.resource_limits.memory_mb", &t).map(E::SetMemoryMb)).transpose()?,
            self.cpu_percent.map(|t| optional_number(CPU, &t).map(E::SetCpuPercent)).transpose()?,
            self.network_disabled.map(E::SetNetworkDisabled),
            self.max_concurrent_jobs
                .map(|t| optional_number("agent.max_concurrent_jobs", &t).map(E::SetMaxConcurrentJobs))
                .transpose()?,
            self.max_cache_gb.map(|t| number("model_cache.max_cache_gb", &t).map(E::SetMaxCacheGb)).transpose()?,
            self.max_gpu_temp_c
                .map(|t| number("host_controls.max_gpu_temp_c", &t).map(E::SetMaxGpuTemp))
                .transpose()?,
            self.pause_on_battery.map(E::SetPauseOnBattery),
            self.schedule.map(|days| schedule(&days).map(E::SetSchedule)).transpose()?,
        ];
        Ok(edits.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_becomes_checked_edits_and_a_bad_field_is_named() {
        let form: SettingsForm = serde_json::from_value(serde_json::json!({
            "host_name": "", "memory_mb": " 2048 ", "cpu_percent": "", "max_concurrent_jobs": "4",
            "schedule": {"mon": "09:00-12:00, 13:00-17:00", "tue": ""}
        }))
        .unwrap();
        let edits = form.into_edits().unwrap();
        assert!(edits.contains(&ConfigEdit::SetHostName(Some(String::new()))));
        assert!(edits.contains(&ConfigEdit::SetMemoryMb(2048)));
        assert!(edits.contains(&ConfigEdit::SetCpuPercent(None)));
        assert!(edits.contains(&ConfigEdit::SetMaxConcurrentJobs(Some(4))));
        let mon = vec!["09:00-12:00".parse().unwrap(), "13:00-17:00".parse().unwrap()];
        assert!(edits.contains(&ConfigEdit::SetSchedule(BTreeMap::from([(Day::Mon, mon)]))));

        let bad = SettingsForm { memory_mb: Some("lots".into()), ..Default::default() }.into_edits().unwrap_err();
        assert!(bad.to_string().contains("workload.resource_limits.memory_mb"), "{bad}");
        let days = BTreeMap::from([(Day::Fri, "9-5".to_string())]);
        let bad = SettingsForm { schedule: Some(days), ..Default::default() }.into_edits().unwrap_err();
        assert!(bad.to_string().contains("host_controls.schedule.fri") && bad.to_string().contains("09:00-17:00"));
        let unknown = serde_json::from_value::<SettingsForm>(serde_json::json!({"nats_password": "x"}));
        assert!(unknown.is_err(), "an unknown field is refused, not ignored");
    }

    #[test]
    fn the_view_carries_no_password() {
        let mut config = Config::default();
        config.coordinator.nats_url = "tls://island:Pw-123@sail.example:4222".parse().unwrap();
        let view = SettingsView::new(&config, PathBuf::from("/cache"));
        assert_eq!(view.coordinator_url, "tls://sail.example:4222");
        assert!(view.password_in_url);
        assert!(!serde_json::to_string(&view).unwrap().contains("Pw-123"));
        assert_eq!(view.model_cache_dir, PathBuf::from("/cache"));
    }
}
