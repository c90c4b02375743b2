//! Named tasks under the agent's cancellation tree: each is tracked so shutdown can wait
//! for it and name the ones that had to be abandoned.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The set of tasks alive now, by name (a name may be shared, hence the count).
#[derive(Clone, Default)]
pub(crate) struct Alive(Arc<Mutex<BTreeMap<String, usize>>>);

impl Alive {
    /// Names of the tasks still running.
    pub fn names(&self) -> Vec<String> {
        self.0.lock().expect("alive set").keys().cloned().collect()
    }
}

struct AliveGuard {
    alive: Alive,
    name: String,
}

impl Drop for AliveGuard {
    fn drop(&mut self) {
        let mut map = self.alive.0.lock().expect("alive set");
        if let Some(n) = map.get_mut(&self.name) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.name);
            }
        }
    }
}

/// Spawns `fut` on `tracker`, registered under `name` while it runs.
pub(crate) fn spawn_named<F>(tracker: &TaskTracker, alive: &Alive, name: impl Into<String>, fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let name = name.into();
    *alive.0.lock().expect("alive set").entry(name.clone()).or_default() += 1;
    let guard = AliveGuard { alive: alive.clone(), name };
    tracker.spawn(async move {
        let _guard = guard;
        fut.await;
    });
}

/// Runs `tick` every `period` until `token` is cancelled; the first tick comes at once.
/// A tick is awaited before the next is scheduled, so ticks never pile up.
pub(crate) async fn every<F, Fut>(period: Duration, token: CancellationToken, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = interval.tick() => {}
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tick() => {}
        }
    }
}
