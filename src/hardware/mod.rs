//! What this machine offers: CPU, memory, the disk that holds the model cache, and GPUs
//! (NVIDIA through NVML; Apple Silicon's unified memory), with the owner's GPU selection
//! applied. Probes run off the async threads; a long-lived [`Sampler`] refreshes the live
//! figures (CPU load as a real delta between two samples, not an average since boot).

pub mod bandwidth;
mod nvml;
pub mod power;
pub mod recent;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The machine, as the coordinator and the owner see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    /// Logical CPUs.
    pub cpu_cores: u32,
    /// CPU model name.
    pub cpu_model: String,
    /// Total memory in MB.
    pub ram_mb: u64,
    /// Every GPU found; `selected` marks the ones the owner shares.
    pub gpus: Vec<Gpu>,
    /// Operating system (`linux`, `macos`, `windows`).
    pub os: String,
    /// CPU architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// Live figures, refreshed by the agent's metrics task.
    pub usage: Usage,
}

/// One GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    /// Index (NVML's for NVIDIA GPUs).
    pub index: u32,
    /// Model name.
    pub name: String,
    /// Memory in MB (unified memory on Apple Silicon).
    pub vram_mb: u64,
    /// Stable id (`GPU-…`), when reported.
    pub uuid: Option<String>,
    /// Driver version, when reported.
    pub driver_version: Option<String>,
    /// Shared with Cargos (`workload.gpu_devices`).
    pub selected: bool,
    /// Live figures, where the GPU reports them.
    pub live: Option<GpuLive>,
}

/// Live GPU figures; each is `None` when the card does not report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuLive {
    /// Load, percent.
    pub utilization_percent: Option<u32>,
    /// Memory in use, MB.
    pub memory_used_mb: Option<u64>,
    /// Temperature, °C.
    pub temperature_c: Option<u32>,
    /// Power draw, W.
    pub power_draw_w: Option<f32>,
    /// Power limit, W.
    pub power_limit_w: Option<f32>,
}

/// Live machine figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Memory in use, MB.
    pub memory_used_mb: u64,
    /// CPU load over the last interval, percent of all cores.
    pub cpu_percent: f32,
    /// Space used on the disk that holds the model cache, GB.
    pub disk_used_gb: u64,
    /// Size of that disk, GB.
    pub disk_total_gb: u64,
    /// On battery power (`None`: no battery, or the platform does not say).
    pub on_battery: Option<bool>,
}

impl Hardware {
    /// Detects the machine. Blocking (NVML, `/proc`): call it from `spawn_blocking`.
    pub fn detect() -> Hardware {
        let cpu_cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let kind = sysinfo::RefreshKind::nothing()
            .with_memory(sysinfo::MemoryRefreshKind::everything())
            .with_cpu(sysinfo::CpuRefreshKind::nothing());
        let (ram_mb, memory_used_mb, cpu_model) = match sysinfo::System::new_with_specifics(kind) {
            Ok(sys) => {
                let model = sys.cpus().first().map(|c| c.brand().trim().to_string()).unwrap_or_default();
                (sys.total_memory() >> 20, sys.used_memory() >> 20, model)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the memory size of this machine");
                (0, 0, String::new())
            }
        };
        let mut gpus = nvml::open().map(|n| nvml::detect(&n)).unwrap_or_default();
        if gpus.is_empty() {
            gpus.extend(apple_gpu(&cpu_model, ram_mb));
        }
        Hardware {
            cpu_cores,
            cpu_model,
            ram_mb,
            gpus,
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            usage: Usage { memory_used_mb, ..Usage::default() },
        }
    }

    /// Marks the GPUs named in `workload.gpu_devices` (by index or UUID) as shared.
    pub fn select_gpus(&mut self, devices: &[String]) {
        for gpu in &mut self.gpus {
            gpu.selected = devices
                .iter()
                .any(|d| d.parse::<u32>().is_ok_and(|i| i == gpu.index) || gpu.uuid.as_deref() == Some(d.as_str()));
        }
    }

    /// The GPUs shared with Cargos.
    pub fn selected_gpus(&self) -> impl Iterator<Item = &Gpu> {
        self.gpus.iter().filter(|g| g.selected)
    }

    /// The guide's start-up figures: `12 CPU cores, 32768 MB RAM, GPU: None`.
    pub fn summary(&self) -> String {
        let shared: Vec<String> = self.selected_gpus().map(|g| format!("{} ({} MB)", g.name, g.vram_mb)).collect();
        let gpu = match (shared.is_empty(), self.gpus.len()) {
            (false, _) => shared.join(", "),
            (true, 0) => "None".to_string(),
            (true, n) => format!("None shared ({n} found; list them in workload.gpu_devices to share them)"),
        };
        format!("{} CPU cores, {} MB RAM, GPU: {gpu}", self.cpu_cores, self.ram_mb)
    }

    /// The memory the hardware tier counts: RAM and the first shared GPU's memory (MB).
    pub fn tier(&self) -> (u64, u64) {
        (self.ram_mb, self.selected_gpus().next().map_or(0, |g| g.vram_mb))
    }

    /// Jobs that can run at once when the config does not say: one per two cores and per
    /// 2 GB of memory, at least one (the reference's `max_concurrent_containers`).
    pub fn default_job_slots(&self) -> usize {
        let by_cpu = u64::from(self.cpu_cores / 2);
        let by_ram = self.ram_mb / 2048;
        by_cpu.min(by_ram).max(1) as usize
    }
}

/// Apple Silicon: the chip's GPU, with the unified memory.
fn apple_gpu(cpu_model: &str, ram_mb: u64) -> Option<Gpu> {
    (cfg!(target_os = "macos") && cpu_model.starts_with("Apple M")).then(|| Gpu {
        index: 0,
        name: cpu_model.to_string(),
        vram_mb: ram_mb,
        uuid: None,
        driver_version: None,
        selected: false,
        live: None,
    })
}

/// Samples live figures; keep one alive so each CPU figure covers the time since the last.
pub struct Sampler {
    sys: Option<sysinfo::System>,
    disks: Option<sysinfo::Disks>,
    nvml: Option<nvml_wrapper::Nvml>,
    disk_of: PathBuf,
    /// The last disk figures and when they were read: disk space changes slowly, and
    /// listing every mount is the costliest part of a sample (it matters for an idle tray).
    disk_read: Option<(std::time::Instant, (u64, u64))>,
}

/// How long disk figures are reused.
const DISK_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// One sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Machine figures.
    pub usage: Usage,
    /// GPU index → its figures.
    pub gpus: Vec<(u32, GpuLive)>,
    /// Set when the machine could not be sampled at all, with why: the figures are unknown.
    pub failed: Option<String>,
}

impl Sample {
    /// A sample saying the machine could not be read.
    pub fn failed(why: String) -> Sample {
        Sample { failed: Some(why), ..Sample::default() }
    }
}

impl Sampler {
    /// A sampler that reports the disk holding `disk_of` (the model cache).
    pub fn new(disk_of: PathBuf) -> Self {
        Sampler { sys: None, disks: None, nvml: nvml::open(), disk_of, disk_read: None }
    }

    /// Takes a sample. Blocking but quick: call from `spawn_blocking`.
    pub fn sample(&mut self) -> Sample {
        let (disk_used_gb, disk_total_gb) = self.disk_gb();
        let mut usage = Usage { disk_used_gb, disk_total_gb, on_battery: power::on_battery(), ..Usage::default() };
        if self.sys.is_none() {
            self.sys = sysinfo::System::new().ok();
        }
        if let Some(sys) = self.sys.as_mut() {
            sys.refresh_memory();
            sys.refresh_cpu_usage();
            usage.memory_used_mb = sys.used_memory() >> 20;
            usage.cpu_percent = sys.global_cpu_usage();
        }
        let gpus = match &self.nvml {
            Some(n) => (0..n.device_count().unwrap_or(0)).map(|i| (i, nvml::live(n, i))).collect(),
            None => Vec::new(),
        };
        Sample { usage, gpus, failed: None }
    }

    /// Used and total GB of the disk whose mount point holds the model cache, or zeros.
    fn disk_gb(&mut self) -> (u64, u64) {
        if let Some((at, figures)) = self.disk_read
            && at.elapsed() < DISK_REFRESH
        {
            return figures;
        }
        let figures = self.read_disk_gb();
        self.disk_read = Some((std::time::Instant::now(), figures));
        figures
    }

    fn read_disk_gb(&mut self) -> (u64, u64) {
        match &mut self.disks {
            Some(d) => d.refresh(true),
            None => self.disks = sysinfo::Disks::new_with_refreshed_list().ok(),
        }
        let path = crate::fsutil::existing_ancestor(&self.disk_of);
        let disk = self.disks.as_ref().and_then(|d| {
            d.iter().filter(|d| path.starts_with(d.mount_point())).max_by_key(|d| d.mount_point().as_os_str().len())
        });
        const GB: u64 = 1 << 30;
        disk.map_or((0, 0), |d| ((d.total_space() - d.available_space()) / GB, d.total_space() / GB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(index: u32, uuid: &str) -> Gpu {
        Gpu {
            index,
            name: format!("GPU {index}"),
            vram_mb: 8192 * (index as u64 + 1),
            uuid: Some(uuid.into()),
            driver_version: None,
            selected: false,
            live: None,
        }
    }

    #[test]
    fn the_selection_picks_gpus_by_index_or_uuid_and_drives_summary_and_tier() {
        let mut hw = Hardware {
            cpu_cores: 12,
            ram_mb: 32768,
            gpus: vec![gpu(0, "GPU-aaa"), gpu(1, "GPU-bbb")],
            ..Hardware::default()
        };
        assert_eq!(
            hw.summary(),
            "12 CPU cores, 32768 MB RAM, GPU: None shared (2 found; list them in workload.gpu_devices to share them)"
        );
        assert_eq!(hw.tier(), (32768, 0));
        hw.select_gpus(&["GPU-bbb".into()]);
        let chosen: Vec<u32> = hw.selected_gpus().map(|g| g.index).collect();
        assert_eq!(chosen, [1]);
        assert_eq!(hw.tier(), (32768, 16384));
        hw.select_gpus(&["0".into(), "1".into()]);
        assert_eq!(hw.selected_gpus().count(), 2);
        assert_eq!(hw.summary(), "12 CPU cores, 32768 MB RAM, GPU: GPU 0 (8192 MB), GPU 1 (16384 MB)");
        hw.select_gpus(&[]);
        assert_eq!(hw.selected_gpus().count(), 0);
    }

    #[test]
    fn no_gpu_and_slots() {
        let hw = Hardware { cpu_cores: 12, ram_mb: 32768, ..Hardware::default() };
        assert_eq!(hw.summary(), "12 CPU cores, 32768 MB RAM, GPU: None");
        assert_eq!(hw.default_job_slots(), 6);
        assert_eq!(Hardware { cpu_cores: 1, ram_mb: 1024, ..Hardware::default() }.default_job_slots(), 1);
    }

    #[test]
    fn detection_and_sampling_work_on_this_machine_without_nvml_errors() {
        let hw = Hardware::detect();
        assert!(hw.cpu_cores >= 1 && hw.ram_mb > 0, "{hw:?}");
        let dir = tempfile::tempdir().unwrap();
        let s = Sampler::new(dir.path().join("not-yet/model-cache")).sample();
        assert!(s.usage.memory_used_mb > 0 && s.usage.memory_used_mb <= hw.ram_mb, "{s:?}");
        assert!(s.usage.disk_total_gb >= s.usage.disk_used_gb);
        if nvml::open().is_none() {
            assert!(hw.gpus.is_empty() && s.gpus.is_empty(), "no NVML, no NVIDIA GPU");
        }
    }
}
