//! The coordinator credentials the owner stores or removes (desktop Settings, `island
//! credentials`): kept in the OS keyring (or the 0600 file where there is none), shown in the
//! status only as where they are, and the link reconnects with them at once.

use tokio::sync::oneshot;
use tracing::{info, warn};

use super::core::{Core, Request};
use crate::credentials::{CredentialStore, Credentials, CredentialsPlace, Stored};
use crate::error::Result;

impl Core {
    fn credential_store(&self) -> CredentialStore {
        let id = self.config.host_id.clone().unwrap_or_else(|| self.state.get().host_id.clone());
        CredentialStore::new(&self.home, &id)
    }

    /// Stores the owner's credentials on a blocking thread (an unlock prompt may wait for
    /// the owner) and answers `reply` once done; the agent task goes on meanwhile.
    pub(super) fn set_credentials(&mut self, creds: Credentials, reply: oneshot::Sender<Result<()>>) {
        crate::logs::redact_secrets([creds.password.expose().to_string()]);
        let store = self.credential_store();
        self.off_task(reply, move || {
            let stored = store.save(&creds)?;
            match &stored {
                Stored::Keyring => info!("Coordinator credentials stored in the OS keyring"),
                Stored::File(f) => warn!(
                    "No OS keyring is available: coordinator credentials stored in {} (readable only by you)",
                    f.display()
                ),
            }
            Ok(stored.into())
        });
    }

    /// Removes stored credentials, like [`Core::set_credentials`] off the agent task.
    pub(super) fn clear_credentials(&mut self, reply: oneshot::Sender<Result<()>>) {
        let store = self.credential_store();
        let in_url = self.config.coordinator.nats_url.credentials().is_some();
        self.off_task(reply, move || {
            store.clear()?;
            info!("Coordinator credentials removed");
            Ok(if in_url { CredentialsPlace::InUrl } else { CredentialsPlace::None })
        });
    }

    fn off_task(
        &self,
        reply: oneshot::Sender<Result<()>>,
        work: impl FnOnce() -> Result<CredentialsPlace> + Send + 'static,
    ) {
        let Some(back) = self.requests.upgrade() else {
            let _ = reply.send(Err(crate::error::Error::Stopped));
            return;
        };
        tokio::spawn(async move {
            let result = tokio::task::spawn_blocking(work)
                .await
                .unwrap_or_else(|e| Err(crate::credentials::CredentialsError::Failed(e.to_string()).into()));
            let _ = back.send(Request::CredentialsChanged(result, reply)).await;
        });
    }

    /// Back on the agent task: shows where the credentials are and lets the link reconnect
    /// with them.
    pub(super) fn credentials_changed(&mut self, result: Result<CredentialsPlace>, reply: oneshot::Sender<Result<()>>) {
        let result = result.map(|place| {
            self.modify_status(|s| s.credentials = place);
            self.link_config.send_modify(|c| c.generation += 1);
        });
        let _ = reply.send(result);
    }
}
