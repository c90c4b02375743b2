//! The owner's settings edits (desktop Settings, prices, GPU choice): the config file is
//! read, changed and written with fsync on a blocking thread, one write at a time, and the
//! agent task applies the result when it is done, so a slow disk never stalls the agent.

use tokio::sync::oneshot;
use tracing::info;

use super::core::{Core, Request};
use crate::config::{self, Config, ConfigEdit};
use crate::error::{Error, Result};

impl Core {
    /// Writes `edits` into the config file off this task; `reply` is answered once the new
    /// configuration is applied (or with why nothing was written).
    pub(super) fn edit_config(&mut self, edits: Vec<ConfigEdit>, reply: oneshot::Sender<Result<()>>) {
        let Some(path) = self.config_path.clone() else {
            let _ = reply.send(Err(Error::NoConfigFile("change settings")));
            return;
        };
        let Some(back) = self.requests.upgrade() else {
            let _ = reply.send(Err(Error::Stopped));
            return;
        };
        let writes = self.config_writes.clone();
        let file = path.clone();
        tokio::spawn(async move {
            let written = tokio::task::spawn_blocking(move || {
                let mut seq = writes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                *seq += 1;
                let result = config::apply_edits(&path, &edits).map(|loaded| {
                    info!(path = %path.display(), changes = edits.len(), "Configuration changed");
                    loaded.config
                });
                (result.map_err(Error::from), *seq)
            })
            .await;
            // A write that panicked changed nothing the agent knows of (it is never applied).
            let (result, seq) = written.unwrap_or_else(|e| {
                let source = std::io::Error::other(e.to_string());
                (Err(config::ConfigError::Write { path: file, source }.into()), 0)
            });
            let _ = back.send(Request::ConfigEdited(Box::new(result), seq, reply)).await;
        });
    }

    /// Back on this task: applies the written configuration unless a later write was
    /// applied already, and answers the owner.
    pub(super) fn config_edited(&mut self, result: Result<Config>, seq: u64, reply: oneshot::Sender<Result<()>>) {
        let result = result.map(|config| {
            if seq > self.config_applied {
                self.config_applied = seq;
                self.apply_config(config);
            }
        });
        let _ = reply.send(result);
    }
}
