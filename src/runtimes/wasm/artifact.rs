//! Compiled artifacts on disk are sealed: wasmtime trusts a serialized module completely (it
//! is machine code), so each one carries an HMAC-SHA256 tag made with a key only this Island
//! keeps (`.artifact-key` in the cache directory, readable by its owner only). An artifact
//! whose tag does not match (written by someone else, damaged, or from another Island) is
//! never loaded; the module is compiled again.

use std::io;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The tag's length, at the start of the file.
const TAG: usize = 32;
/// The key file, in the cache directory.
pub const KEY_FILE: &str = ".artifact-key";

/// Seals and checks artifacts with this Island's key.
pub struct Seal {
    key: [u8; 32],
}

impl Seal {
    /// The key in `dir`, made (randomly, private to the owner) when there is none.
    ///
    /// # Errors
    /// The key cannot be read or written, or the system has no randomness.
    pub fn open(dir: &Path) -> io::Result<Seal> {
        let path = dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&bytes);
                return Ok(Seal { key });
            }
            Ok(_) => {} // A damaged key: a new one; the artifacts sealed with the old are compiled again.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
        std::fs::create_dir_all(dir)?;
        crate::fsutil::write_private(&path, &key)?;
        Ok(Seal { key })
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    /// `bytes` with its tag in front, as written to disk.
    pub fn seal(&self, bytes: &[u8]) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(bytes);
        let mut out = mac.finalize().into_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    }

    /// The artifact inside `sealed`, when its tag is this Island's (checked in constant time).
    pub fn unseal<'a>(&self, sealed: &'a [u8]) -> Option<&'a [u8]> {
        let (tag, bytes) = sealed.split_at_checked(TAG)?;
        let mut mac = self.mac();
        mac.update(bytes);
        mac.verify_slice(tag).ok().map(|()| bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_this_key_sealed_unseals() {
        let dir = tempfile::tempdir().unwrap();
        let seal = Seal::open(dir.path()).unwrap();
        let sealed = seal.seal(b"machine code");
        assert_eq!(seal.unseal(&sealed), Some(&b"machine code"[..]));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(seal.unseal(&tampered), None, "one bit changed");
        assert_eq!(seal.unseal(b"short"), None);
        assert_eq!(Seal::open(dir.path()).unwrap().unseal(&sealed), Some(&b"machine code"[..]), "the key is kept");
        let other = Seal::open(tempfile::tempdir().unwrap().path()).unwrap();
        assert_eq!(other.unseal(&sealed), None, "another Island's artifact");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
