//! "Connect" from the first-run screen: the owner gives the coordinator address and the
//! credentials from their dashboard; they are stored (the credentials in the OS keyring,
//! never in `config.toml`), the link tries them at once, and the answer is what happened.

use std::time::Duration;

use super::AgentHandle;
use crate::api::{Command, LinkState, LinkStatus};
use crate::config::ConfigEdit;
use crate::credentials::Credentials;
use crate::error::Result;

impl AgentHandle {
    /// Stores `credentials`, moves the link to `url` when given (and different), and waits
    /// up to `deadline` for the outcome of a connection attempt made with them: connected,
    /// or why not. At the deadline the link's state at that moment is returned (it may be
    /// still connecting; the link keeps trying either way).
    ///
    /// # Errors
    /// The URL is not a coordinator URL, or the credentials cannot be stored (a locked
    /// keyring, …): nothing was changed then, or only what the error says.
    pub async fn connect(
        &self,
        url: Option<String>,
        credentials: Credentials,
        deadline: Duration,
    ) -> Result<LinkStatus> {
        let mut status = self.status();
        let shown = status.borrow().settings.coordinator_url.clone();
        // The address first, then the credentials: each is a change the link acts on.
        if let Some(url) = url.map(|u| u.trim().to_string()).filter(|u| *u != shown) {
            self.send(Command::EditConfig(vec![ConfigEdit::SetNatsUrl(url)])).await?;
        }
        self.send(Command::SetCredentials(credentials)).await?;
        // The change that carries both: the outcome wanted is of this one or a later one.
        let wanted = self.inner.link_config.borrow().generation;
        let outcome = |s: &crate::api::Status| {
            s.link.generation >= wanted && !matches!(s.link.state, LinkState::Connecting | LinkState::Idle)
        };
        let waited = tokio::time::timeout(deadline, status.wait_for(outcome)).await;
        Ok(match waited {
            Ok(Ok(s)) => s.link.clone(),
            _ => self.status().borrow().link.clone(),
        })
    }
}
