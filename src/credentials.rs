//! Coordinator credentials kept out of `config.toml`: in the OS keyring (Secret Service,
//! Keychain, Credential Manager) under the Island's id; where no keyring is available (a
//! server without Secret Service), in `<home>/credentials.json` readable only by the owner.
//! The link reads them when `coordinator.nats_url` carries none. Nothing here logs a secret.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::fsutil::write_private;

/// The keyring service name.
pub const SERVICE: &str = "io.archipelag.island";

/// A NATS user and password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The user.
    pub user: String,
    /// The password.
    pub password: Secret,
}

/// Where credentials were put.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    /// In the OS keyring.
    Keyring,
    /// In this file (mode 0600), because no keyring is available.
    File(PathBuf),
}

/// Where the coordinator credentials in use come from, as the settings screen says it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "place", rename_all = "snake_case")]
pub enum CredentialsPlace {
    /// Not known yet (no connection attempt so far).
    #[default]
    Unknown,
    /// `coordinator.nats_url` carries them.
    InUrl,
    /// The OS keyring.
    Keyring,
    /// The fallback file (mode 0600): this machine has no OS keyring.
    File {
        /// The file.
        path: PathBuf,
    },
    /// None anywhere: Island connects without.
    None,
}

impl From<Stored> for CredentialsPlace {
    fn from(s: Stored) -> Self {
        match s {
            Stored::Keyring => CredentialsPlace::Keyring,
            Stored::File(path) => CredentialsPlace::File { path },
        }
    }
}

/// Why credentials could not be stored, read or removed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The fallback file could not be used.
    #[error("cannot use the credentials file {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The stored value cannot be read.
    #[error("the stored coordinator credentials ({0}) are unreadable; store them again")]
    Corrupt(String),
    /// The keyring is there but locked, or its unlock prompt was dismissed: nothing was
    /// stored anywhere (a plaintext fallback is only for machines without a keyring).
    #[error(
        "the OS keyring is locked (or its unlock prompt was dismissed): unlock it, for example by logging in to \
         the desktop session or in your keyring manager, and try again; nothing was stored"
    )]
    Locked(#[source] keyring::Error),
    /// The keyring call itself failed (it panicked).
    #[error("storing the credentials failed: {0}")]
    Failed(String),
    /// The keyring refused for another reason than being absent or locked.
    #[error("the OS keyring refused: {0}")]
    Keyring(#[source] keyring::Error),
}

#[derive(Serialize, Deserialize)]
struct Record {
    user: String,
    password: String,
}

/// The credentials of one Island.
pub struct CredentialStore {
    island_id: String,
    file: PathBuf,
}

impl CredentialStore {
    /// The store for `island_id`, with its fallback file in `home`.
    pub fn new(home: &Path, island_id: &str) -> Self {
        CredentialStore { island_id: island_id.to_string(), file: home.join("credentials.json") }
    }

    fn entry(&self) -> Result<keyring::Entry, keyring::Error> {
        keyring::Entry::new(SERVICE, &self.island_id)
    }

    /// Stores `creds`: in the keyring when there is one, else in the 0600 file.
    ///
    /// # Errors
    /// When neither can be written.
    pub fn save(&self, creds: &Credentials) -> Result<Stored, CredentialsError> {
        let json =
            serde_json::to_string(&Record { user: creds.user.clone(), password: creds.password.expose().into() })
                .expect("serializes");
        match self.entry().and_then(|e| e.set_password(&json)) {
            Ok(()) => {
                // A copy left in the file from a time without keyring would go stale.
                let _ = std::fs::remove_file(&self.file);
                Ok(Stored::Keyring)
            }
            Err(e) if keyring_absent(&e) => {
                write_private(&self.file, json.as_bytes())
                    .map_err(|source| CredentialsError::Io { path: self.file.clone(), source })?;
                Ok(Stored::File(self.file.clone()))
            }
            Err(e) => Err(refusal(e)),
        }
    }

    /// The stored credentials, from the keyring or the fallback file.
    ///
    /// # Errors
    /// When a stored value cannot be read.
    pub fn load(&self) -> Result<Option<Credentials>, CredentialsError> {
        Ok(self.load_located()?.map(|(c, _)| c))
    }

    /// Like [`CredentialStore::load`], also saying where they were found.
    ///
    /// # Errors
    /// As [`CredentialStore::load`].
    pub fn load_located(&self) -> Result<Option<(Credentials, Stored)>, CredentialsError> {
        let from_keyring = match self.entry().and_then(|e| e.get_password()) {
            Ok(json) => Some(json),
            Err(keyring::Error::NoEntry) => None,
            Err(e) if keyring_absent(&e) => None,
            Err(e) => return Err(refusal(e)),
        };
        let (json, place) = match from_keyring {
            Some(j) => (j, Stored::Keyring),
            None => match std::fs::read_to_string(&self.file) {
                Ok(j) => (j, Stored::File(self.file.clone())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(source) => return Err(CredentialsError::Io { path: self.file.clone(), source }),
            },
        };
        let s: Record = serde_json::from_str(&json).map_err(|e| CredentialsError::Corrupt(e.to_string()))?;
        Ok(Some((Credentials { user: s.user, password: Secret::new(s.password) }, place)))
    }

    /// Removes stored credentials from both places.
    ///
    /// # Errors
    /// When the keyring or the file refuses.
    pub fn clear(&self) -> Result<(), CredentialsError> {
        match self.entry().and_then(|e| e.delete_credential()) {
            Ok(()) | Err(keyring::Error::NoEntry) => {}
            Err(e) if keyring_absent(&e) => {}
            Err(e) => return Err(refusal(e)),
        }
        match std::fs::remove_file(&self.file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CredentialsError::Io { path: self.file.clone(), source }),
        }
    }
}

/// A keyring that is there but refuses: locked (or the prompt dismissed) is said as such.
fn refusal(e: keyring::Error) -> CredentialsError {
    match e {
        keyring::Error::NoStorageAccess(_) => CredentialsError::Locked(e),
        e => CredentialsError::Keyring(e),
    }
}

/// No keyring on this machine: no session bus, or no Secret Service on it. Only then do
/// credentials go to the private file; a locked keyring is an error instead. (macOS and
/// Windows always have theirs.)
fn keyring_absent(e: &keyring::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        let inner = match e {
            keyring::Error::NoStorageAccess(b) | keyring::Error::PlatformFailure(b) => b,
            _ => return false,
        };
        match inner.downcast_ref::<secret_service::Error>() {
            Some(secret_service::Error::Unavailable) => true,
            Some(secret_service::Error::Zbus(_) | secret_service::Error::ZbusFdo(_)) => {
                // Nobody owns org.freedesktop.secrets, or the bus socket is gone.
                let text = inner.to_string();
                ["ServiceUnknown", "NameHasNoOwner", "Connection refused", "No such file"]
                    .iter()
                    .any(|m| text.contains(m))
            }
            _ => false,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = e;
        false
    }
}
