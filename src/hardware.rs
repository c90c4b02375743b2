//! What this machine offers: CPU cores, memory and NVIDIA GPUs, detected off the async
//! threads, plus live usage figures from a long-lived sampler (so CPU load is a real
//! delta between two samples, not an average since boot).

use std::process::Command as Process;

use serde::{Deserialize, Serialize};

/// The machine, as the coordinator and the owner see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    /// Logical CPUs.
    pub cpu_cores: u32,
    /// Total memory in MB.
    pub ram_mb: u64,
    /// NVIDIA GPUs found by `nvidia-smi`.
    pub gpus: Vec<Gpu>,
    /// Operating system (`linux`, `macos`, `windows`).
    pub os: String,
    /// CPU architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// Live figures, refreshed by the agent's metrics task.
    pub usage: Usage,
}

/// One GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gpu {
    /// `nvidia-smi` index.
    pub index: u32,
    /// Model name.
    pub name: String,
    /// Memory in MB.
    pub vram_mb: u64,
    /// Stable id (`GPU-…`), when reported.
    pub uuid: Option<String>,
}

/// Live machine figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Memory in use, MB.
    pub memory_used_mb: u64,
    /// CPU load over the last interval, percent of all cores.
    pub cpu_percent: f32,
    /// Space used on the disk mounted at `/`, GB (0 where there is none, as on Windows).
    pub disk_used_gb: u64,
    /// Size of the disk mounted at `/`, GB.
    pub disk_total_gb: u64,
}

impl Hardware {
    /// Detects the machine. Blocking (it runs `nvidia-smi`): call it from `spawn_blocking`.
    pub fn detect() -> Hardware {
        let cpu_cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let (ram_mb, memory_used_mb) = match sysinfo::System::new() {
            Ok(mut sys) => {
                sys.refresh_memory();
                (sys.total_memory() / 1024 / 1024, sys.used_memory() / 1024 / 1024)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the memory size of this machine");
                (0, 0)
            }
        };
        Hardware {
            cpu_cores,
            ram_mb,
            gpus: detect_gpus(),
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            usage: Usage { memory_used_mb, ..Usage::default() },
        }
    }

    /// The figure the guide's start-up line shows: `12 CPU cores, 32768 MB RAM, GPU: None`.
    pub fn summary(&self) -> String {
        let gpu = match self.gpus.as_slice() {
            [] => "None".to_string(),
            gpus => gpus.iter().map(|g| format!("{} ({} MB)", g.name, g.vram_mb)).collect::<Vec<_>>().join(", "),
        };
        format!("{} CPU cores, {} MB RAM, GPU: {gpu}", self.cpu_cores, self.ram_mb)
    }

    /// Jobs that can run at once when the config does not say: one per two cores and per
    /// 2 GB of memory, at least one (the reference's `max_concurrent_containers`).
    pub fn default_job_slots(&self) -> usize {
        let by_cpu = u64::from(self.cpu_cores / 2);
        let by_ram = self.ram_mb / 2048;
        by_cpu.min(by_ram).max(1) as usize
    }
}

fn detect_gpus() -> Vec<Gpu> {
    let out = Process::new("nvidia-smi")
        .args(["--query-gpu=index,name,memory.total,uuid", "--format=csv,noheader,nounits"])
        .output();
    match out {
        Ok(o) if o.status.success() => parse_nvidia_smi(&String::from_utf8_lossy(&o.stdout)),
        Ok(o) => {
            tracing::debug!(status = %o.status, "nvidia-smi failed; no NVIDIA GPU is used");
            Vec::new()
        }
        Err(e) => {
            tracing::debug!(error = %e, "nvidia-smi not found; no NVIDIA GPU is used");
            Vec::new()
        }
    }
}

/// Parses `nvidia-smi --query-gpu=index,name,memory.total,uuid --format=csv,noheader,nounits`.
/// Lines that do not parse are skipped; `[N/A]` memory reads as 0.
pub fn parse_nvidia_smi(text: &str) -> Vec<Gpu> {
    text.lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            let index = cols.first()?.parse().ok()?;
            let name = cols.get(1).filter(|n| !n.is_empty())?.to_string();
            let vram_mb = cols.get(2).and_then(|m| m.parse().ok()).unwrap_or(0);
            let uuid = cols.get(3).filter(|u| u.starts_with("GPU-")).map(|u| u.to_string());
            Some(Gpu { index, name, vram_mb, uuid })
        })
        .collect()
}

/// Samples live usage; keep one alive so each CPU figure covers the time since the last.
#[derive(Default)]
pub struct Sampler {
    sys: Option<sysinfo::System>,
    disks: Option<sysinfo::Disks>,
}

impl Sampler {
    /// Takes a sample; `None` where this platform gives no figures. Blocking but quick
    /// (reads `/proc` on Linux).
    pub fn sample(&mut self) -> Option<Usage> {
        if self.sys.is_none() {
            self.sys = sysinfo::System::new().ok();
        }
        let (disk_used_gb, disk_total_gb) = self.root_disk_gb();
        let sys = self.sys.as_mut()?;
        sys.refresh_memory();
        sys.refresh_cpu_usage();
        Some(Usage {
            memory_used_mb: sys.used_memory() / 1024 / 1024,
            cpu_percent: sys.global_cpu_usage(),
            disk_used_gb,
            disk_total_gb,
        })
    }

    /// Used and total GB of the disk mounted at `/` (the reference's rule), or zeros.
    fn root_disk_gb(&mut self) -> (u64, u64) {
        match &mut self.disks {
            Some(d) => d.refresh(true),
            None => self.disks = sysinfo::Disks::new_with_refreshed_list().ok(),
        }
        const GB: u64 = 1024 * 1024 * 1024;
        let root = self.disks.as_ref().and_then(|d| d.iter().find(|d| d.mount_point() == std::path::Path::new("/")));
        root.map_or((0, 0), |d| ((d.total_space() - d.available_space()) / GB, d.total_space() / GB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nvidia_smi_lines() {
        let text = "0, NVIDIA H200, 143771, GPU-1a2b\n1, NVIDIA GeForce RTX 4090, [N/A], GPU-3c4d\ngarbage\n";
        let gpus = parse_nvidia_smi(text);
        assert_eq!(gpus.len(), 2);
        assert_eq!(
            gpus[0],
            Gpu { index: 0, name: "NVIDIA H200".into(), vram_mb: 143771, uuid: Some("GPU-1a2b".into()) }
        );
        assert_eq!(gpus[1].vram_mb, 0);
    }

    #[test]
    fn summary_and_slots_follow_the_machine() {
        let hw = Hardware { cpu_cores: 12, ram_mb: 32768, ..Hardware::default() };
        assert_eq!(hw.summary(), "12 CPU cores, 32768 MB RAM, GPU: None");
        assert_eq!(hw.default_job_slots(), 6);
        assert_eq!(Hardware { cpu_cores: 1, ram_mb: 1024, ..Hardware::default() }.default_job_slots(), 1);
    }

    #[test]
    fn detect_finds_this_machine() {
        let hw = Hardware::detect();
        assert!(hw.cpu_cores >= 1 && hw.ram_mb > 0, "{hw:?}");
        let usage = Sampler::default().sample().expect("figures on this platform");
        assert!(usage.memory_used_mb > 0 && usage.memory_used_mb <= hw.ram_mb, "{usage:?}");
        if cfg!(target_os = "linux") && std::path::Path::new("/").exists() {
            assert!(usage.disk_total_gb >= usage.disk_used_gb);
        }
    }
}
