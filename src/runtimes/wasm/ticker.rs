//! The engine's clock: one thread advances the epoch every tick while at least one WASM
//! instance runs, and sleeps on a condition variable otherwise, so an idle Island does not
//! wake up a hundred times a second for nothing. Running stores measure their time limit and
//! notice their cancel in ticks, so ticking only while they run changes nothing for them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wasmtime::Engine;

#[derive(Default)]
struct State {
    running: usize,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    ticks: AtomicU64,
}

/// Owns the ticking thread; it ends when this is dropped.
pub(super) struct Ticker {
    shared: Arc<Shared>,
}

/// Keeps the epoch advancing while it lives (one per running instance).
pub(super) struct Ticking {
    shared: Arc<Shared>,
}

impl Ticker {
    pub(super) fn start(engine: Engine, tick: Duration) -> Ticker {
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                loop {
                    {
                        let state = s.state.lock().expect("ticker state");
                        let state = s.wake.wait_while(state, |st| st.running == 0 && !st.stop).expect("ticker state");
                        if state.stop {
                            return;
                        }
                    }
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                    s.ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
            .expect("a thread for the WASM epoch");
        Ticker { shared }
    }

    /// Ticks until the returned guard is dropped.
    pub(super) fn running(&self) -> Ticking {
        self.shared.state.lock().expect("ticker state").running += 1;
        self.shared.wake.notify_all();
        Ticking { shared: self.shared.clone() }
    }

    /// Epoch ticks so far.
    #[cfg(test)]
    fn ticks(&self) -> u64 {
        self.shared.ticks.load(Ordering::Relaxed)
    }
}

impl Drop for Ticking {
    fn drop(&mut self) {
        self.shared.state.lock().expect("ticker state").running -= 1;
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.state.lock().expect("ticker state").stop = true;
        self.shared.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn ticks_only_while_an_instance_runs() {
        let ticker = Ticker::start(Engine::default(), Duration::from_millis(1));
        let guard = ticker.running();
        let end = Instant::now() + Duration::from_secs(10);
        while ticker.ticks() < 5 {
            assert!(Instant::now() < end, "the epoch never advanced while an instance ran");
            std::thread::yield_now();
        }
        drop(guard);
        // At most the tick in progress when the guard went away.
        let settled = ticker.ticks() + 1;
        // Idleness can only be seen over time: a span of 30 ticks.
        std::thread::sleep(Duration::from_millis(30));
        assert!(ticker.ticks() <= settled, "the epoch kept advancing with nothing running");
    }
}
