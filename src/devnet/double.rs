//! The coordinator double: a stand-in for the Archipelag.io coordinator that speaks the
//! protocol over a real `nats-server` (protocol §18). It answers registration and pairing,
//! records heartbeats, leases and every job report in order, dispatches jobs, sends cancels
//! and preload hints, and serves the recommendations endpoint. Used by the integration
//! tests and by `island devnet`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::http::HttpServer;
use super::nats_server::{NatsServer, ServerOptions};
use super::record::{Recorder, Shared, pairing_code};
use crate::coordinator::messages::{
    JobImageOutput, JobOutput, JobProgress, JobStatus, LeaseRenewal, PairingResponse, PreloadRecommendation,
    Recommendations,
};
use crate::coordinator::subjects;

/// The stream the double keeps job reports in, so that none is lost while a side reconnects.
pub const REPORTS_STREAM: &str = "JOB_REPORTS";

/// How the double is set up.
#[derive(Debug, Clone)]
pub struct DoubleOptions {
    /// Create the `JOBS` work-queue stream (otherwise Islands fall back to core NATS).
    pub jobs_stream: bool,
    /// Keep job reports in a stream (exactly-once delivery across outages).
    pub durable_reports: bool,
    /// How long pairing codes are valid.
    pub pairing_ttl: Duration,
    /// The largest message the reports stream keeps (`max_msg_size`); unlimited when unset.
    pub reports_max_msg_size: Option<i32>,
    /// The NATS server's settings.
    pub server: ServerOptions,
    /// How many NATS servers, as one cluster with clustered JetStream (1: a single server).
    /// With 3 or more the streams are replicated 3 times.
    pub nodes: usize,
    /// Keep everything seen for [`CoordinatorDouble::history`]; off, only waiters hear of it
    /// (a thousand Islands' heartbeats would fill the memory a swarm benchmark measures).
    pub keep_history: bool,
}

impl Default for DoubleOptions {
    fn default() -> Self {
        DoubleOptions {
            jobs_stream: true,
            durable_reports: true,
            pairing_ttl: Duration::from_secs(600),
            reports_max_msg_size: None,
            server: ServerOptions::default(),
            nodes: 1,
            keep_history: true,
        }
    }
}

/// Something the double saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// A registration, as sent.
    Registered(Value),
    /// A pairing request from this host, answered with this code (`None`: already paired).
    PairingRequested {
        /// The host.
        host_id: String,
        /// The code given.
        code: Option<String>,
    },
    /// A heartbeat, as sent.
    Heartbeat(Value),
    /// A job state.
    Status(JobStatus),
    /// A job output chunk.
    Output(JobOutput),
    /// Job progress.
    Progress(JobProgress),
    /// A job image.
    Image(JobImageOutput),
    /// A lease renewal.
    Lease(LeaseRenewal),
}

/// A running coordinator double; everything stops when it is dropped.
pub struct CoordinatorDouble {
    /// The servers; one unless the options asked for a cluster.
    servers: Mutex<Vec<NatsServer>>,
    /// Stream replicas: 3 on a cluster of three or more, else 1.
    pub(super) replicas: usize,
    client: async_nats::Client,
    pub(super) js: jetstream::Context,
    http: HttpServer,
    shared: Arc<Mutex<Shared>>,
    events: broadcast::Sender<(usize, Observed)>,
    token: CancellationToken,
    /// Whether the `JOBS` stream was created (jobs then go through JetStream).
    jobs_stream: std::sync::atomic::AtomicBool,
}

impl CoordinatorDouble {
    /// Starts `nats-server`, the streams, the responders and the HTTP endpoint.
    ///
    /// # Errors
    /// When `nats-server` cannot run or the set-up fails.
    pub async fn start(options: DoubleOptions) -> Result<CoordinatorDouble, async_nats::Error> {
        let servers = match options.nodes {
            0 | 1 => vec![NatsServer::start(options.server.clone())?],
            n => NatsServer::start_cluster(n, options.server.clone())?,
        };
        let mut connect = async_nats::ConnectOptions::new().name("coordinator-double").max_reconnects(None);
        if let Some((user, pass)) = &options.server.auth {
            connect = connect.user_and_password(user.clone(), pass.clone());
        }
        let urls = servers.iter().map(|s| s.url().parse()).collect::<Result<Vec<async_nats::ServerAddr>, _>>()?;
        let client = connect.connect(urls).await?;
        let js = jetstream::new(client.clone());
        if servers.len() > 1 {
            super::nats_server::wait_for_jetstream(&js).await?;
        }
        let http = HttpServer::start().await?;
        http.route("/api/v1/island/recommendations", "application/json", br#"{"recommendations":[]}"#.to_vec());
        let (events, _) = broadcast::channel(65_536);
        let double = CoordinatorDouble {
            replicas: if servers.len() >= 3 { 3 } else { 1 },
            servers: Mutex::new(servers),
            client,
            js,
            http,
            shared: Arc::new(Mutex::new(Shared { forget: !options.keep_history, ..Shared::default() })),
            events,
            token: CancellationToken::new(),
            jobs_stream: false.into(),
        };
        if options.jobs_stream {
            double.create_jobs_stream().await?;
        }
        double.spawn_responders(options.pairing_ttl).await?;
        if options.durable_reports {
            let record = Recorder::new(double.shared.clone(), double.events.clone());
            let limits = (options.reports_max_msg_size, double.replicas);
            super::record::consume_reports(&double.js, limits, record, double.token.clone()).await?;
        } else {
            for leaf in ["status", "output", "progress", "image"] {
                let sub = double.client.subscribe(format!("host.*.{leaf}")).await?;
                let record = Recorder::new(double.shared.clone(), double.events.clone());
                super::record::record_subscription(sub, record, double.token.clone());
            }
        }
        double.client.flush().await?;
        Ok(double)
    }

    /// The NATS URL Islands connect to (the first node's, on a cluster: a client learns the
    /// others from it).
    pub fn nats_url(&self) -> String {
        self.servers.lock().expect("servers")[0].url()
    }

    /// Every node's URL, comma-separated, as a client's server list.
    pub fn cluster_url(&self) -> String {
        self.servers.lock().expect("servers").iter().map(NatsServer::url).collect::<Vec<_>>().join(",")
    }

    /// The (first) NATS server's port.
    pub fn port(&self) -> u16 {
        self.servers.lock().expect("servers")[0].port()
    }

    /// Kills node `i` of the cluster at once, as a machine that dies.
    pub fn kill_node(&self, i: usize) {
        self.servers.lock().expect("servers")[i].kill();
    }

    /// Starts node `i` again with its store.
    ///
    /// # Errors
    /// When it does not come back.
    pub fn restart_node(&self, i: usize) -> std::io::Result<()> {
        self.servers.lock().expect("servers")[i].restart()
    }

    /// The HTTP base URL (`coordinator.api_url`).
    pub fn api_url(&self) -> String {
        self.http.base_url()
    }

    /// The HTTP server, to serve more files (Cargo modules).
    pub fn http(&self) -> &HttpServer {
        &self.http
    }

    /// Creates the `JOBS` stream (work-queue retention, `host.*.jobs`).
    ///
    /// # Errors
    /// When JetStream refuses.
    pub async fn create_jobs_stream(&self) -> Result<(), async_nats::Error> {
        self.js
            .get_or_create_stream(stream::Config {
                name: subjects::JOBS_STREAM.into(),
                subjects: vec!["host.*.jobs".into()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                num_replicas: self.replicas,
                ..Default::default()
            })
            .await?;
        self.jobs_stream.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Publishes a job to `host.<id>.jobs` (into the stream when there is one).
    ///
    /// # Errors
    /// When the server does not take it.
    pub async fn dispatch(&self, host_id: &str, job: &Value) -> Result<(), async_nats::Error> {
        self.dispatch_raw(host_id, serde_json::to_vec(job)?).await
    }

    /// Publishes raw bytes as a job (for malformed-input tests).
    ///
    /// # Errors
    /// When the server does not take it.
    pub async fn dispatch_raw(&self, host_id: &str, payload: Vec<u8>) -> Result<(), async_nats::Error> {
        let subject = subjects::jobs(host_id);
        if self.jobs_stream.load(std::sync::atomic::Ordering::Relaxed) {
            // While a cluster elects a new stream leader (a node died) the stream does not
            // answer; a coordinator publishes again, for up to 15 s.
            let end = tokio::time::Instant::now() + Duration::from_secs(15);
            let payload = bytes::Bytes::from(payload);
            loop {
                let ack = match self.js.publish(subject.clone(), payload.clone()).await {
                    Ok(ack) => ack.await.map(drop).map_err(async_nats::Error::from),
                    Err(e) => Err(e.into()),
                };
                match ack {
                    Ok(()) => break,
                    Err(e) if tokio::time::Instant::now() > end => return Err(e),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        } else {
            self.client.publish(subject, payload.into()).await?;
            self.client.flush().await?;
        }
        Ok(())
    }

    /// Sends `{"job_id"}` on `host.<id>.cancel`.
    ///
    /// # Errors
    /// When the publish fails.
    pub async fn cancel(&self, host_id: &str, job_id: &str) -> Result<(), async_nats::Error> {
        let body = serde_json::to_vec(&serde_json::json!({ "job_id": job_id }))?;
        self.client.publish(subjects::cancel(host_id), body.into()).await?;
        Ok(self.client.flush().await?)
    }

    /// Sends a preload hint on `host.<id>.preload`.
    ///
    /// # Errors
    /// When the publish fails.
    pub async fn preload(&self, host_id: &str, hint: &PreloadRecommendation) -> Result<(), async_nats::Error> {
        self.client.publish(subjects::preload(host_id), serde_json::to_vec(hint)?.into()).await?;
        Ok(self.client.flush().await?)
    }

    /// Serves these recommendations from now on.
    pub fn set_recommendations(&self, recs: Vec<PreloadRecommendation>) {
        let body = serde_json::to_vec(&Recommendations { recommendations: recs }).expect("serializes");
        self.http.route("/api/v1/island/recommendations", "application/json", body);
    }

    /// Serves this body as the recommendations answer (for malformed entries).
    pub fn set_recommendations_body(&self, body: Vec<u8>) {
        self.http.route("/api/v1/island/recommendations", "application/json", body);
    }

    /// Marks a host paired: its next pairing request is answered "already paired".
    pub fn set_paired(&self, host_id: &str) {
        self.shared.lock().expect("double state").paired.insert(host_id.to_string());
    }

    /// Everything seen so far, in order (nothing when the options turned `keep_history` off).
    pub fn history(&self) -> Vec<Observed> {
        self.shared.lock().expect("double state").log.clone()
    }

    /// Stops the NATS server, every node of a cluster (streams stay on disk).
    pub fn stop_server(&self) {
        self.servers.lock().expect("servers").iter_mut().for_each(NatsServer::stop);
    }

    /// Starts the NATS server (every node) again on the same ports with the same streams.
    ///
    /// # Errors
    /// When one does not come back.
    pub fn restart_server(&self) -> std::io::Result<()> {
        self.servers.lock().expect("servers").iter_mut().try_for_each(NatsServer::restart)
    }

    /// Feeds `pick` everything seen so far and then what comes, until it returns `Some` or
    /// `deadline` passes.
    pub async fn wait_for<T>(&self, deadline: Duration, mut pick: impl FnMut(&Observed) -> Option<T>) -> Option<T> {
        let mut rx = self.events.subscribe();
        let seen = self.history();
        for o in &seen {
            if let Some(t) = pick(o) {
                return Some(t);
            }
        }
        let from = seen.len();
        tokio::time::timeout(deadline, async {
            loop {
                match rx.recv().await {
                    Ok((i, o)) if i >= from => {
                        if let Some(t) = pick(&o) {
                            return Some(t);
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    async fn spawn_responders(&self, ttl: Duration) -> Result<(), async_nats::Error> {
        let record = Recorder::new(self.shared.clone(), self.events.clone());
        let mut register = self.client.subscribe(subjects::REGISTER).await?;
        let mut heartbeats = self.client.subscribe("host.*.heartbeat").await?;
        let mut leases = self.client.subscribe("host.*.lease").await?;
        let mut pairing = self.client.subscribe(subjects::PAIRING).await?;
        let (client, token, base) = (self.client.clone(), self.token.clone(), self.http.base_url());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = token.cancelled() => return,
                    Some(m) = register.next() => record.json(&m.payload, Observed::Registered),
                    Some(m) = heartbeats.next() => record.json(&m.payload, Observed::Heartbeat),
                    Some(m) = leases.next() => {
                        if let Ok(l) = serde_json::from_slice(&m.payload) { record.push(Observed::Lease(l)) }
                    }
                    Some(m) = pairing.next() => {
                        let host_id = serde_json::from_slice::<Value>(&m.payload).ok()
                            .and_then(|v| v["host_id"].as_str().map(str::to_string)).unwrap_or_default();
                        let paired = record.shared.lock().expect("double state").paired.contains(&host_id);
                        let reply = if paired {
                            PairingResponse { success: false, code: None, expires_in_seconds: None, pair_url: None,
                                              error: Some("host already paired".into()) }
                        } else {
                            let code = pairing_code();
                            PairingResponse { success: true, code: Some(code.clone()), expires_in_seconds: Some(ttl.as_secs().max(1)),
                                              pair_url: Some(format!("{base}/pair/{code}")), error: None }
                        };
                        record.push(Observed::PairingRequested { host_id, code: reply.code.clone() });
                        if let Some(to) = m.reply {
                            let _ = client.publish(to, serde_json::to_vec(&reply).expect("serializes").into()).await;
                        }
                    }
                    else => return,
                }
            }
        });
        Ok(())
    }
}

impl Drop for CoordinatorDouble {
    fn drop(&mut self) {
        self.token.cancel();
    }
}
