//! Looking into the coordinator double's cluster for tests: what an Island's consumer still
//! holds, whether the replicated groups caught up after a node came back, and a summary of
//! the consumers for a failing test's message.

use std::time::Duration;

use async_nats::jetstream::{consumer, stream};

use super::double::{CoordinatorDouble, REPORTS_STREAM};
use crate::coordinator::subjects;

impl CoordinatorDouble {
    /// What the `JOBS` stream still holds for an Island's consumer: jobs delivered but not
    /// acknowledged, and deliveries that were repeats. Both 0 mean no job will be offered again.
    ///
    /// # Errors
    /// When the stream or the consumer is missing.
    pub async fn unacked_jobs(&self, host_id: &str) -> Result<(usize, u64), async_nats::Error> {
        let info = self.consumer_info(subjects::JOBS_STREAM, &subjects::consumer(host_id)).await?;
        Ok((info.num_ack_pending, info.num_redelivered as u64))
    }

    /// A consumer's state, asked of its leader.
    async fn consumer_info(&self, stream: &str, name: &str) -> Result<consumer::Info, async_nats::Error> {
        let stream = self.js.get_stream(stream).await?;
        let mut consumer: consumer::PullConsumer = stream.get_consumer(name).await?;
        Ok(consumer.info().await?.clone())
    }

    /// Waits until every replica of the job and report streams, the Island's consumer and
    /// the double's is current again, as after a node came back: losing a second node
    /// before then is a double failure, which an R3 group does not survive (its consumer
    /// would have no leader). Returns what is still behind when `within` passes.
    ///
    /// # Errors
    /// A description of the groups still behind.
    pub async fn wait_replicated(&self, host_id: &str, within: Duration) -> Result<(), String> {
        let end = tokio::time::Instant::now() + within;
        let groups = [(subjects::JOBS_STREAM, subjects::consumer(host_id)), (REPORTS_STREAM, "double".to_string())];
        loop {
            let mut behind = Vec::new();
            for (stream, consumer) in &groups {
                for (what, peers) in self.peers(stream, consumer).await {
                    let ok = peers
                        .as_ref()
                        .is_some_and(|p| p.len() + 1 == self.replicas && p.iter().all(|r| r.current && !r.offline));
                    if !ok {
                        behind.push(format!("{what}: {peers:?}"));
                    }
                }
            }
            if behind.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() > end {
                return Err(behind.join("; "));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The followers of a stream's group and of one of its consumers' (`None`: no answer,
    /// or no leader).
    async fn peers(&self, name: &str, consumer: &str) -> [(String, Option<Vec<stream::PeerInfo>>); 2] {
        let followers = |c: Option<stream::ClusterInfo>| c.filter(|c| c.leader.is_some()).map(|c| c.replicas);
        let stream = match self.js.get_stream(name).await {
            Ok(mut s) => s.info().await.ok().and_then(|i| i.cluster.clone()),
            Err(_) => None,
        };
        let consumer_cluster = self.consumer_info(name, consumer).await.ok().and_then(|i| i.cluster);
        [(format!("stream {name}"), followers(stream)), (format!("consumer {consumer}"), followers(consumer_cluster))]
    }

    /// The Island's job consumer and the double's reports consumer as the cluster sees
    /// them (leader, replicas, waiting pulls, pending), for a failing test's message.
    pub async fn consumer_report(&self, host_id: &str) -> String {
        let jobs = self.describe(subjects::JOBS_STREAM, &subjects::consumer(host_id)).await;
        let reports = self.describe(REPORTS_STREAM, "double").await;
        format!("jobs {jobs}; reports {reports}")
    }

    async fn describe(&self, stream: &str, name: &str) -> String {
        match self.consumer_info(stream, name).await {
            Ok(i) => format!(
                "consumer: leader {:?}, replicas {:?}, waiting pulls {}, pending {}, unacked {}, redelivered {}",
                i.cluster.as_ref().and_then(|c| c.leader.clone()),
                i.cluster.as_ref().map(|c| c
                    .replicas
                    .iter()
                    .map(|r| (r.name.clone(), r.current, r.active))
                    .collect::<Vec<_>>()),
                i.num_waiting,
                i.num_pending,
                i.num_ack_pending,
                i.num_redelivered
            ),
            Err(e) => format!("consumer: no answer ({e})"),
        }
    }
}
