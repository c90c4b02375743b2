//! What the coordinator double remembers: paired hosts and everything it saw, in order.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::broadcast;

use super::double::Observed;

/// The double's memory: paired hosts and everything seen.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) paired: HashSet<String>,
    pub(super) log: Vec<Observed>,
}

/// Records what the double sees, in order, and tells waiters.
#[derive(Clone)]
pub(super) struct Recorder {
    pub(super) shared: Arc<Mutex<Shared>>,
    events: broadcast::Sender<(usize, Observed)>,
}

impl Recorder {
    pub(super) fn new(shared: Arc<Mutex<Shared>>, events: broadcast::Sender<(usize, Observed)>) -> Self {
        Recorder { shared, events }
    }

    pub(super) fn push(&self, o: Observed) {
        let mut s = self.shared.lock().expect("double state");
        s.log.push(o.clone());
        let _ = self.events.send((s.log.len() - 1, o));
    }

    pub(super) fn json(&self, payload: &[u8], make: fn(Value) -> Observed) {
        if let Ok(v) = serde_json::from_slice(payload) {
            self.push(make(v));
        }
    }

    pub(super) fn report(&self, subject: &str, payload: &[u8]) {
        let parsed = match subject.rsplit('.').next() {
            Some("status") => serde_json::from_slice(payload).map(Observed::Status),
            Some("output") => serde_json::from_slice(payload).map(Observed::Output),
            Some("progress") => serde_json::from_slice(payload).map(Observed::Progress),
            Some("image") => serde_json::from_slice(payload).map(Observed::Image),
            _ => return,
        };
        if let Ok(o) = parsed {
            self.push(o);
        }
    }
}

/// A 6-character code from letters and digits that are hard to confuse.
pub(super) fn pairing_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    uuid::Uuid::new_v4().as_bytes()[..6].iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}
