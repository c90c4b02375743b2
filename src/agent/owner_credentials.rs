//! The coordinator credentials the owner stores or removes (desktop Settings, `island
//! credentials`): kept in the OS keyring (or the 0600 file where there is none), shown in the
//! status only as where they are, and the link reconnects with them at once.

use tracing::{info, warn};

use super::core::Core;
use crate::credentials::{CredentialStore, Credentials, CredentialsPlace, Stored};
use crate::error::Result;

impl Core {
    fn credential_store(&self) -> CredentialStore {
        let id = self.config.host_id.clone().unwrap_or_else(|| self.state.get().host_id.clone());
        CredentialStore::new(&self.home, &id)
    }

    pub(super) fn set_credentials(&mut self, creds: &Credentials) -> Result<()> {
        crate::logs::redact_secrets([creds.password.expose().to_string()]);
        let stored = self.credential_store().save(creds)?;
        self.status.send_modify(|s| s.credentials = stored.clone().into());
        match stored {
            Stored::Keyring => info!("Coordinator credentials stored in the OS keyring"),
            Stored::File(f) => warn!(
                "No OS keyring is available: coordinator credentials stored in {} (readable only by you)",
                f.display()
            ),
        }
        self.link_config.send_modify(|_| {});
        Ok(())
    }

    pub(super) fn clear_credentials(&mut self) -> Result<()> {
        self.credential_store().clear()?;
        let in_url = self.config.coordinator.nats_url.credentials().is_some();
        let place = if in_url { CredentialsPlace::InUrl } else { CredentialsPlace::None };
        self.status.send_modify(|s| s.credentials = place);
        info!("Coordinator credentials removed");
        self.link_config.send_modify(|_| {});
        Ok(())
    }
}
