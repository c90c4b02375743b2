//! The agent task's hosting decisions: the owner's pause and resume, the automatic pauses
//! and GPU hold that each metrics sample drives, and the state they leave hosting in.

use tracing::{error, info, warn};

use super::core::Core;
use crate::api::{Event, Fault, FaultKind, HostingState};
use crate::error::{Error, Result};
use crate::hardware::Sample;
use crate::host_controls::{battery_reason, schedule_reason};

impl Core {
    pub(super) fn pause(&mut self, now: bool) -> Result<()> {
        self.state.update(|s| s.paused = true)?;
        self.manual_paused = true;
        if now {
            self.cancel_all();
        }
        info!(cancel_running = now, "Hosting paused by the owner");
        self.refresh_hosting();
        Ok(())
    }

    pub(super) fn resume(&mut self) -> Result<()> {
        if self.stopping {
            return Err(Error::Stopped);
        }
        self.state.update(|s| s.paused = false)?;
        self.manual_paused = false;
        match &self.auto_pause {
            Some(reason) => info!("Hosting resumed by the owner, but it stays paused: {reason}"),
            None => info!("Hosting resumed"),
        }
        self.refresh_hosting();
        Ok(())
    }

    /// Applies a metrics sample and the owner's protections it drives.
    pub(super) fn on_sample(&mut self, sample: Sample) {
        self.recent.push(crate::fsutil::unix_ms(), &sample);
        let fault = sample
            .failed
            .as_ref()
            .map(|why| format!("live machine figures cannot be read ({why}); GPU jobs wait until they can"));
        self.set_fault(FaultKind::Metrics, fault);
        let controls = &self.config.host_controls;
        // The shared GPUs that are monitored (NVML reports them); when sampling failed, all of
        // them are, with no reading, so GPU jobs wait rather than run on a GPU of unknown heat.
        let temps: Vec<(u32, Option<u32>)> = {
            let hw = &self.status.borrow().hardware;
            let monitored = |i: u32| sample.failed.is_some() || sample.gpus.iter().any(|(j, _)| *j == i);
            let live = |i: u32| sample.gpus.iter().find(|(j, _)| *j == i).and_then(|(_, l)| l.temperature_c);
            hw.selected_gpus().filter(|g| monitored(g.index)).map(|g| (g.index, live(g.index))).collect()
        };
        let gpu_hold =
            self.thermal.update(&temps, controls.max_gpu_temp_c.get() as u32, controls.temp_hysteresis_c.get() as u32);

        let now = chrono::Local::now().naive_local();
        let auto = battery_reason(sample.usage.on_battery, controls.pause_on_battery)
            .or_else(|| schedule_reason(&controls.schedule, now));
        if gpu_hold != self.gpu_hold {
            match &gpu_hold {
                Some(r) => warn!("Taking no GPU jobs until the GPU cools: {r}"),
                None => info!("GPUs cooled down; taking GPU jobs again"),
            }
            self.gpu_hold = gpu_hold;
        }
        if auto != self.auto_pause {
            match &auto {
                Some(r) => info!("Hosting paused automatically: {r}"),
                None => info!("Automatic pause over; hosting again unless the owner paused"),
            }
            self.auto_pause = auto;
        }
        if sample.failed.is_some() {
            self.refresh_hosting();
            return;
        }
        self.modify_status(|s| {
            s.hardware.usage = sample.usage;
            for (index, live) in &sample.gpus {
                if let Some(g) = s.hardware.gpus.iter_mut().find(|g| g.index == *index) {
                    g.live = Some(*live);
                }
            }
        });
        self.refresh_hosting();
    }

    /// Records that `kind` fails (`Some(message)`) or works again (`None`); says so in the
    /// log once per change.
    pub(super) fn set_fault(&mut self, kind: FaultKind, message: Option<String>) {
        let before = self.status.borrow().faults.iter().find(|f| f.kind == kind).map(|f| f.message.clone());
        if before == message {
            return;
        }
        match &message {
            Some(m) => error!("{m}"),
            None => info!("{kind:?} works again"),
        }
        self.modify_status(|s| {
            s.faults.retain(|f| f.kind != kind);
            if let Some(message) = message {
                s.faults.push(Fault { kind, message });
            }
        });
    }

    /// Hosting follows the owner's pause, the automatic pauses and shutdown; with any of
    /// them, running jobs finish (draining) and then hosting is paused.
    pub(super) fn refresh_hosting(&mut self) {
        let hold = self.stopping || self.manual_paused || self.auto_pause.is_some();
        let next = match (hold, self.running.is_empty()) {
            (false, _) => HostingState::Hosting,
            (true, true) => HostingState::Paused,
            (true, false) => HostingState::Draining,
        };
        self.set_hosting(next);
    }

    pub(super) fn set_hosting(&mut self, hosting: HostingState) {
        if self.hosting != hosting {
            self.hosting = hosting;
            let _ = self.events.send(Event::Hosting(hosting));
        }
        self.publish();
    }
}
