//! Every NATS subject and JetStream name of the coordinator protocol (protocol §2), in one
//! place.

/// Where an Island announces itself.
pub const REGISTER: &str = "coordinator.hosts.register";
/// Where an Island asks for a pairing code (request/reply).
pub const PAIRING: &str = "coordinator.hosts.pairing";
/// The stream jobs are queued in.
pub const JOBS_STREAM: &str = "JOBS";

/// `host.<id>.<leaf>`
fn host(id: &str, leaf: &str) -> String {
    format!("host.{id}.{leaf}")
}

/// Heartbeats.
pub fn heartbeat(id: &str) -> String {
    host(id, "heartbeat")
}
/// Job assignments (JetStream filter or core subscription).
pub fn jobs(id: &str) -> String {
    host(id, "jobs")
}
/// Job states.
pub fn status(id: &str) -> String {
    host(id, "status")
}
/// Job output chunks.
pub fn output(id: &str) -> String {
    host(id, "output")
}
/// Job progress.
pub fn progress(id: &str) -> String {
    host(id, "progress")
}
/// Job images.
pub fn image(id: &str) -> String {
    host(id, "image")
}
/// Lease renewals.
pub fn lease(id: &str) -> String {
    host(id, "lease")
}
/// Cancels from the coordinator.
pub fn cancel(id: &str) -> String {
    host(id, "cancel")
}
/// Preload hints from the coordinator.
pub fn preload(id: &str) -> String {
    host(id, "preload")
}
/// Round-trip probes to the coordinator (the reply, if any, is ignored).
pub fn ping(id: &str) -> String {
    host(id, "ping")
}
/// Reachability probes, answered with `pong`.
pub fn probe(id: &str) -> String {
    host(id, "probe")
}
/// The durable consumer name of this Island on the `JOBS` stream.
pub fn consumer(id: &str) -> String {
    format!("host-{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_protocol() {
        let id = "3f2c0000-0000-4000-8000-000000000001";
        assert_eq!(jobs(id), format!("host.{id}.jobs"));
        assert_eq!(consumer(id), format!("host-{id}"));
        assert_eq!(heartbeat("x"), "host.x.heartbeat");
    }
}
