//! NVIDIA GPUs through NVML (loaded at run time: an Island without the NVIDIA driver simply
//! has no NVIDIA GPU). Each query a card does not support is left out on its own.

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use tracing::debug;

use super::{Gpu, GpuLive};

/// Opens NVML once; `None` (logged at debug level once) when there is no driver.
pub fn open() -> Option<Nvml> {
    match Nvml::init() {
        Ok(nvml) => Some(nvml),
        Err(e) => {
            debug!(error = %e, "NVML not available: no NVIDIA GPU is used");
            None
        }
    }
}

/// The GPUs NVML reports, with their first live figures.
pub fn detect(nvml: &Nvml) -> Vec<Gpu> {
    let driver = nvml.sys_driver_version().ok();
    let count = nvml.device_count().unwrap_or(0);
    (0..count)
        .filter_map(|index| {
            let dev = nvml.device_by_index(index).ok()?;
            Some(Gpu {
                index,
                name: dev.name().unwrap_or_else(|_| format!("NVIDIA GPU {index}")),
                vram_mb: dev.memory_info().map_or(0, |m| m.total / (1 << 20)),
                uuid: dev.uuid().ok(),
                driver_version: driver.clone(),
                selected: false,
                live: Some(live(nvml, index)),
            })
        })
        .collect()
}

/// Live figures of one GPU; a figure the card does not report is `None`.
pub fn live(nvml: &Nvml, index: u32) -> GpuLive {
    let Ok(dev) = nvml.device_by_index(index) else { return GpuLive::default() };
    GpuLive {
        utilization_percent: dev.utilization_rates().ok().map(|u| u.gpu),
        memory_used_mb: dev.memory_info().ok().map(|m| m.used / (1 << 20)),
        temperature_c: dev.temperature(TemperatureSensor::Gpu).ok(),
        power_draw_w: dev.power_usage().ok().map(|mw| mw as f32 / 1000.0),
        power_limit_w: dev.enforced_power_limit().ok().map(|mw| mw as f32 / 1000.0),
    }
}
