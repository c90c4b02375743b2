//! `[coordinator]`: where the coordinator is and the link's timings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Bounded, HttpUrl, NatsUrl};

/// `[coordinator]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoordinatorConfig {
    /// NATS URL of the coordinator, `nats://` or `tls://`, optionally `user:password@`.
    pub nats_url: NatsUrl,
    /// Coordinator HTTP URL, for demand-driven preloading; polling is off when unset.
    pub api_url: Option<HttpUrl>,
    /// How often a heartbeat is sent (the first one at once).
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How often the lease of each running job is renewed.
    #[serde(with = "humantime_serde")]
    pub lease_interval: Duration,
    /// How far each renewal extends a lease, in seconds.
    pub lease_extend_seconds: Bounded<1, 86_400>,
    /// How long the server waits for a job's ack before it delivers the job again.
    #[serde(with = "humantime_serde")]
    pub ack_wait: Duration,
    /// How many times the server delivers a job before it gives up on it.
    pub max_deliver: Bounded<1, 1000>,
    /// How long one pull for jobs waits on the server before it is renewed.
    #[serde(with = "humantime_serde")]
    pub pull_wait: Duration,
    /// While jobs come over plain NATS (no `JOBS` stream), how often to look for the stream.
    #[serde(with = "humantime_serde")]
    pub stream_check_interval: Duration,
    /// Time limit for requests to the coordinator (pairing) and for publish acks.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// While unpaired, how long to wait before asking again when a pairing request got no answer.
    #[serde(with = "humantime_serde")]
    pub pairing_retry: Duration,
    /// Largest job message accepted, in bytes; larger ones fail with a clear error.
    pub max_job_bytes: Bounded<1024, 67_108_864>,
    /// Longest pause between connection attempts when the server cannot be reached or
    /// refuses the credentials, and longest random pause before registering again after an
    /// outage (so a swarm returning together registers spread over twice this).
    #[serde(with = "humantime_serde")]
    pub reconnect_max_delay: Duration,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            nats_url: "tls://sail.archipelag.io:4222".parse().expect("valid default URL"),
            api_url: None,
            heartbeat_interval: Duration::from_secs(10),
            lease_interval: Duration::from_secs(30),
            lease_extend_seconds: Bounded::new(60).expect("in range"),
            ack_wait: Duration::from_secs(60),
            max_deliver: Bounded::new(5).expect("in range"),
            pull_wait: Duration::from_secs(5),
            stream_check_interval: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            pairing_retry: Duration::from_secs(60),
            max_job_bytes: Bounded::new(1_048_576).expect("in range"),
            reconnect_max_delay: Duration::from_secs(15),
        }
    }
}
