//! The sandbox a container Cargo runs in: limits by tier (protocol §6.4) or from
//! `[workload.resource_limits]`, and the hardening every container gets whatever its tier:
//! no capabilities, no new privileges, a process limit, swap no larger than memory, and a
//! read-only root with a small non-executable `/tmp`, and Island's seccomp profile
//! (`seccomp.rs`: Docker's default, tightened).

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{DeviceRequest, HostConfig};

use crate::config::{Config, SandboxTier};

/// Processes one Cargo may have at once (a fork bomb stops here).
pub const PIDS_LIMIT: i64 = 512;

/// What one container may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Memory (and memory plus swap), MB.
    pub memory_mb: u64,
    /// CPU, in hundredths of a core (100 = one core); `None`: unlimited.
    pub cpu_percent: Option<u64>,
    /// Whether the container has a network.
    pub network: bool,
    /// The GPUs it sees (device ids or UUIDs).
    pub gpus: Vec<String>,
    /// Root file system read-only, with a tmpfs `/tmp` of this many MB.
    pub read_only_root: Option<u64>,
}

impl Sandbox {
    /// The sandbox of a job asking for `tier` (`None`: the configured default, else the
    /// limits of `[workload.resource_limits]`). A tier never loosens what the owner set:
    /// the network needs both the tier and the config, memory and CPU are the smaller.
    pub fn for_job(tier: Option<SandboxTier>, config: &Config) -> Sandbox {
        let limits = &config.workload.resource_limits;
        let owner_cpu = limits.cpu_percent.map(|c| c.get());
        let base = Sandbox {
            timeout: config.workload.job_timeout,
            memory_mb: limits.memory_mb.get(),
            cpu_percent: owner_cpu,
            network: !limits.network_disabled,
            gpus: config.workload.gpu_devices.clone(),
            read_only_root: limits.read_only_rootfs.then(|| limits.tmpfs_size_mb.get()),
        };
        let min_cpu = |tier_cpu: u64| Some(owner_cpu.map_or(tier_cpu, |c| c.min(tier_cpu)));
        match tier.or(config.workload.sandbox_tier) {
            None => base,
            Some(SandboxTier::Restricted) => Sandbox {
                timeout: Duration::from_secs(60),
                memory_mb: base.memory_mb.min(256),
                cpu_percent: min_cpu(100),
                network: false,
                gpus: Vec::new(),
                ..base
            },
            Some(SandboxTier::Standard) => Sandbox {
                timeout: Duration::from_secs(300),
                memory_mb: base.memory_mb.min(1024),
                cpu_percent: min_cpu(200),
                network: false,
                ..base
            },
            Some(SandboxTier::Elevated) => Sandbox {
                timeout: Duration::from_secs(600),
                memory_mb: base.memory_mb.min(8192),
                cpu_percent: min_cpu(400),
                ..base
            },
        }
    }

    /// The engine's settings for it.
    pub fn host_config(&self) -> HostConfig {
        let memory = i64::try_from(self.memory_mb).unwrap_or(i64::MAX / 2) * 1024 * 1024;
        let tmpfs =
            self.read_only_root.map(|mb| HashMap::from([("/tmp".to_string(), format!("rw,noexec,nosuid,size={mb}m"))]));
        let gpus = (!self.gpus.is_empty()).then(|| {
            vec![DeviceRequest {
                driver: Some("nvidia".into()),
                device_ids: Some(self.gpus.clone()),
                capabilities: Some(vec![vec!["gpu".into()]]),
                ..Default::default()
            }]
        });
        HostConfig {
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: self.cpu_percent.map(|c| i64::try_from(c).unwrap_or(i64::MAX / 10_000_000) * 10_000_000),
            pids_limit: Some(PIDS_LIMIT),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges:true".into(), super::seccomp::security_opt()]),
            readonly_rootfs: Some(self.read_only_root.is_some()),
            tmpfs,
            network_mode: (!self.network).then(|| "none".to_string()),
            device_requests: gpus,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_tighten_and_never_loosen_the_owners_limits() {
        let mut config = Config::default();
        config.workload.gpu_devices = vec!["0".into()];
        let none = Sandbox::for_job(None, &config);
        assert_eq!((none.memory_mb, none.network, none.timeout), (4096, false, Duration::from_secs(300)));
        assert_eq!(none.read_only_root, Some(256));
        let r = Sandbox::for_job(Some(SandboxTier::Restricted), &config);
        assert_eq!(
            (r.memory_mb, r.cpu_percent, r.network, r.timeout),
            (256, Some(100), false, Duration::from_secs(60))
        );
        assert!(r.gpus.is_empty(), "the restricted tier gets no GPU");
        let e = Sandbox::for_job(Some(SandboxTier::Elevated), &config);
        assert_eq!((e.memory_mb, e.network, e.gpus.len()), (4096, false, 1), "the owner's 4 GB and no network stand");
        config.workload.resource_limits.network_disabled = false;
        assert!(Sandbox::for_job(Some(SandboxTier::Elevated), &config).network, "both allow it");
        assert!(!Sandbox::for_job(Some(SandboxTier::Standard), &config).network, "the tier does not");
    }

    #[test]
    fn every_container_is_hardened() {
        let h = Sandbox::for_job(Some(SandboxTier::Standard), &Config::default()).host_config();
        assert_eq!(h.memory, h.memory_swap, "no swap beyond the memory limit");
        assert_eq!(h.memory, Some(1024 * 1024 * 1024));
        assert_eq!(h.nano_cpus, Some(2_000_000_000));
        assert_eq!(h.cap_drop, Some(vec!["ALL".to_string()]));
        let security = h.security_opt.unwrap();
        assert_eq!(security[0], "no-new-privileges:true");
        assert!(security[1].starts_with("seccomp={"), "Island's own seccomp profile");
        assert_eq!((h.readonly_rootfs, h.network_mode.as_deref()), (Some(true), Some("none")));
        assert_eq!(h.tmpfs.unwrap()["/tmp"], "rw,noexec,nosuid,size=256m");
        assert_eq!(h.pids_limit, Some(PIDS_LIMIT));
        assert!(h.device_requests.is_none());
    }
}
