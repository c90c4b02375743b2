//! Heartbeats (§3.3): built from the agent's status, which the metrics task keeps current,
//! so building one never waits on a probe; sent every `heartbeat_interval`, the first at once.

use std::time::Duration;

use super::messages::{
    CacheStats, CachedModelStats, GpuMetrics, Heartbeat, ModelCacheStats, PerformanceEstimates, SystemMetrics,
};
use super::{Link, subjects};
use crate::api::{HostingState, Status};
use crate::config::SandboxTier;
use crate::fsutil::unix_ms;
use crate::hardware::bandwidth;
use crate::pricing::asking_prices;
use crate::runtimes::wasm::limits;
use crate::tasks::every;

/// How long the round-trip probe may take before the heartbeat goes without it.
const RTT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends heartbeats until shutdown.
pub(super) async fn run(link: Link) {
    let interval = link.config.coordinator.heartbeat_interval;
    let token = link.token.clone();
    every(interval, token, || {
        let link = link.clone();
        async move {
            // The round trip the reference measures, on its own task: job handling never waits.
            let rtt = link.round_trip(RTT_TIMEOUT).await.map(|d| d.as_secs_f32() * 1000.0);
            let hb = build(&link.status.borrow(), &link.host_id, rtt, unix_ms());
            link.publish_json(subjects::heartbeat(&link.host_id), &hb).await;
        }
    })
    .await;
}

/// Builds a heartbeat from a status snapshot (its runtimes are those that can run Cargos
/// now: container only while a Docker engine answers). Pure and quick.
pub fn build(status: &Status, host_id: &str, rtt_ms: Option<f32>, now_ms: i64) -> Heartbeat {
    let hw = &status.hardware;
    let usage = &hw.usage;
    let paused = status.hosting != HostingState::Hosting;
    let first = hw.selected_gpus().next();
    let bandwidth = first.map(|g| bandwidth::gb_per_s(&g.name, g.vram_mb));
    let tok_s = first.zip(bandwidth).map(|(g, bw)| bandwidth::llm_tokens_per_s(bw, g.vram_mb));
    // `[N/A]` figures are sent as 0, as the reference does.
    let gpus: Vec<GpuMetrics> = hw
        .selected_gpus()
        .filter_map(|g| {
            let live = g.live?;
            Some(GpuMetrics {
                index: g.index,
                utilization_percent: live.utilization_percent.unwrap_or(0),
                memory_used_mb: live.memory_used_mb.unwrap_or(0),
                memory_total_mb: g.vram_mb,
                temperature_c: live.temperature_c.unwrap_or(0),
                power_draw_w: live.power_draw_w.unwrap_or(0.0),
            })
        })
        .collect();
    Heartbeat {
        host_id: host_id.to_string(),
        status: if paused { "paused" } else { "online" }.to_string(),
        active_jobs: status.running.len() as u32,
        timestamp: now_ms,
        agent_version: crate::VERSION.to_string(),
        system: Some(SystemMetrics {
            cpu_percent: usage.cpu_percent,
            memory_used_mb: usage.memory_used_mb,
            memory_total_mb: hw.ram_mb,
            disk_used_gb: usage.disk_used_gb,
            disk_total_gb: usage.disk_total_gb,
        }),
        gpus: (!gpus.is_empty()).then_some(gpus),
        active_job_metrics: None,
        cache: cache_stats(status, now_ms),
        performance_estimates: PerformanceEstimates {
            gpu_bandwidth_gb_s: bandwidth,
            estimated_llm_tok_s: tok_s,
            max_concurrent_containers: status.max_concurrent_jobs as u32,
            wasm_memory_limit_mb: wasm_memory_limit_mb(status),
            supported_runtimes: status.runtimes.clone(),
            nats_rtt_ms: rtt_ms,
            public_addr: None,
        },
        asking_prices: asking_prices(&status.pricing),
        model_cache: model_cache(&status.models),
    }
}

/// The model cache's figures and models; none while the cache cannot be used.
fn model_cache(view: &crate::models::ModelCacheView) -> Option<ModelCacheStats> {
    if view.error.is_some() {
        return None;
    }
    let models = view
        .models
        .iter()
        .map(|m| CachedModelStats {
            uris: m.uris.clone(),
            file: m.file.clone(),
            format: m.format.clone(),
            size_bytes: m.bytes,
            sha256: (!m.sha256.is_empty()).then(|| m.sha256.clone()),
        })
        .collect();
    Some(ModelCacheStats {
        cached_model_count: view.models.len(),
        cached_size_mb: view.used_bytes >> 20,
        budget_mb: view.budget_bytes >> 20,
        downloading: view.downloads.iter().map(|d| d.model.clone()).collect(),
        models,
    })
}

/// The container images Island pulled and keeps (not the owner's own), and the warm
/// workloads: the Cargos that succeeded here within `cache.warm_ttl_seconds`.
fn cache_stats(status: &Status, now_ms: i64) -> CacheStats {
    let since = now_ms - i64::try_from(status.settings.warm_ttl_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let warm: Vec<String> =
        status.recent_workloads.iter().filter(|w| w.last_run_ms >= since).map(|w| w.workload_id.clone()).collect();
    CacheStats {
        cached_image_count: status.image_cache.images,
        cached_size_mb: status.image_cache.size_mb,
        warm_workload_count: warm.len(),
        warm_workload_ids: warm,
    }
}

/// The most memory one WASM Cargo can get here: the largest tier's limit, capped by
/// `wasm.max_memory_mb` and by the machine's memory.
fn wasm_memory_limit_mb(status: &Status) -> u32 {
    let tier_mb = (limits::for_tier(SandboxTier::Elevated).memory_bytes >> 20) as u64;
    let cap = status.settings.wasm_max_memory_mb.unwrap_or(u64::MAX);
    let ram = if status.hardware.ram_mb == 0 { u64::MAX } else { status.hardware.ram_mb };
    u32::try_from(tier_mb.min(cap).min(ram)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::{Gpu, GpuLive, Hardware};

    #[test]
    fn only_shared_gpus_appear_with_their_figures_and_estimates() {
        let live = GpuLive {
            utilization_percent: Some(87),
            memory_used_mb: Some(9120),
            temperature_c: Some(66),
            power_draw_w: Some(301.4),
            power_limit_w: None,
        };
        let gpu = |index: u32, name: &str, selected: bool| Gpu {
            index,
            name: name.into(),
            vram_mb: 24564,
            uuid: None,
            driver_version: None,
            selected,
            live: Some(live),
        };
        let mut status = crate::agent::tests_support::status();
        status.hardware = Hardware {
            cpu_cores: 32,
            ram_mb: 65536,
            gpus: vec![gpu(0, "NVIDIA GeForce RTX 4090", true), gpu(1, "NVIDIA T4", false)],
            ..Hardware::default()
        };
        let hb = build(&status, "h", None, 1);
        let gpus = hb.gpus.unwrap();
        assert_eq!(gpus.len(), 1, "the unshared GPU is left out");
        assert_eq!((gpus[0].index, gpus[0].utilization_percent, gpus[0].temperature_c), (0, 87, 66));
        assert_eq!(hb.performance_estimates.gpu_bandwidth_gb_s, Some(1008.0));
        assert_eq!(hb.performance_estimates.estimated_llm_tok_s, Some(123.0));
        assert_eq!(hb.performance_estimates.wasm_memory_limit_mb, 4096, "the elevated tier's limit, not 3/4 of RAM");
        status.hardware.gpus[0].selected = false;
        let hb = build(&status, "h", None, 1);
        assert!(hb.gpus.is_none() && hb.performance_estimates.gpu_bandwidth_gb_s.is_none());
    }

    #[test]
    fn the_cache_block_lists_cargos_that_ran_within_the_warm_ttl_and_the_wasm_cap_is_real() {
        use crate::history::RecentWorkload;
        let mut status = crate::agent::tests_support::status();
        status.settings.warm_ttl_seconds = 3600;
        status.settings.wasm_max_memory_mb = Some(512);
        status.hardware.ram_mb = 16384;
        let w = |id: &str, at: i64| RecentWorkload { workload_id: id.into(), last_run_ms: at };
        let now = 10_000_000_000;
        status.recent_workloads = vec![w("llm-chat", now - 1000), w("42", now - 3_599_000), w("old", now - 3_601_000)];
        let hb = build(&status, "h", None, now);
        assert_eq!(hb.cache.warm_workload_ids, ["llm-chat", "42"]);
        assert_eq!((hb.cache.warm_workload_count, hb.cache.cached_image_count), (2, 0));
        assert_eq!(hb.performance_estimates.wasm_memory_limit_mb, 512);
        status.hardware.ram_mb = 300;
        assert_eq!(build(&status, "h", None, now).performance_estimates.wasm_memory_limit_mb, 300);
    }
}
