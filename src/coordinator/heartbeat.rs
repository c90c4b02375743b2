//! Heartbeats (§3.3): built from the agent's status, which the metrics task keeps current,
//! so building one never waits on a probe; sent every `heartbeat_interval`, the first at once.

use std::time::{Duration, Instant};

use super::messages::{CacheStats, Heartbeat, PerformanceEstimates, SystemMetrics};
use super::{Link, subjects};
use crate::agent::tasks::every;
use crate::api::{HostingState, Status};
use crate::fsutil::unix_ms;
use crate::pricing::asking_prices;

/// How long the round-trip probe may take before the heartbeat goes without it.
const RTT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends heartbeats until shutdown.
pub(super) async fn run(link: Link, runtimes: Vec<String>) {
    let interval = link.config.coordinator.heartbeat_interval;
    let token = link.token.clone();
    every(interval, token, || {
        let link = link.clone();
        let runtimes = runtimes.clone();
        async move {
            let started = Instant::now();
            // A flush is a PING/PONG with the server: the round trip the reference measures.
            let rtt = match tokio::time::timeout(RTT_TIMEOUT, link.client.flush()).await {
                Ok(Ok(())) => Some(started.elapsed().as_secs_f32() * 1000.0),
                _ => None,
            };
            let hb = build(&link.status.borrow(), &link.host_id, &runtimes, rtt, unix_ms());
            link.publish_json(subjects::heartbeat(&link.host_id), &hb).await;
        }
    })
    .await;
}

/// Builds a heartbeat from a status snapshot. Pure and quick.
pub fn build(status: &Status, host_id: &str, runtimes: &[String], rtt_ms: Option<f32>, now_ms: i64) -> Heartbeat {
    let hw = &status.hardware;
    let usage = &hw.usage;
    let paused = status.hosting != HostingState::Hosting;
    let first_gpu_vram = hw.gpus.first().map(|g| g.vram_mb);
    // Without a model table (hardware issue) the reference's fallback rule applies:
    // 40 GB/s per GB of VRAM, 200 when the size is unknown.
    let bandwidth = first_gpu_vram.map(|mb| if mb == 0 { 200.0 } else { mb as f32 / 1024.0 * 40.0 });
    let tok_s = first_gpu_vram.zip(bandwidth).map(|(mb, bw)| {
        let f = if mb == 0 {
            0.3
        } else if mb >= 4608 {
            1.0
        } else {
            0.5
        };
        (bw / 4.5 * 0.55 * f).round()
    });
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
        gpus: None,
        active_job_metrics: None,
        cache: CacheStats::default(),
        performance_estimates: PerformanceEstimates {
            gpu_bandwidth_gb_s: bandwidth,
            estimated_llm_tok_s: tok_s,
            max_concurrent_containers: status.max_concurrent_jobs as u32,
            wasm_memory_limit_mb: u32::try_from(hw.ram_mb * 3 / 4).unwrap_or(u32::MAX),
            supported_runtimes: runtimes.to_vec(),
            nats_rtt_ms: rtt_ms,
            public_addr: None,
        },
        asking_prices: asking_prices(&status.pricing),
    }
}
