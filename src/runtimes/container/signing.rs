//! Cosign signatures of container images (protocol §6.6), verified in process with the
//! sigstore crate instead of by running a `cosign` binary the reference needed and rarely
//! had. A signature is checked for the digest the engine actually pulled, against the keys
//! in `[signing].trusted_keys` and those served at `keys_url` (cached on disk, so a
//! coordinator that is down does not turn every image unsigned). Registries are matched by
//! whole path segments, like the allowlist.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraintVec};
use sigstore::cosign::{ClientBuilder, CosignCapabilities, SignatureLayer};
use sigstore::crypto::SigningScheme;
use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};
use tracing::{debug, info, warn};

use super::policy::ImageRef;
use crate::config::{SigningConfig, TrustedKey};

/// How long keys fetched from `keys_url` are used before they are fetched again.
const KEYS_FRESH_FOR: Duration = Duration::from_secs(3600);
/// After a failed fetch, how long before the next try.
const KEYS_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The longest a key fetch or a registry's signature lookup may take.
const NETWORK_DEADLINE: Duration = Duration::from_secs(30);

/// What the check found, when the image may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A trusted key signed the image.
    Verified {
        /// The key that did.
        key_id: String,
    },
    /// Not checked: signing is off, or the registry is one whose images need no signature.
    NotChecked(String),
    /// No valid signature, and `require_signature` is off: the image runs, with a warning.
    Unsigned(String),
}

/// Where an image's signatures are looked up.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// The image as the job named it.
    pub image: &'a ImageRef,
    /// The manifest digest the engine pulled from the registry (none for an image built or
    /// loaded here, which no registry signature can cover).
    pub digest: Option<&'a str>,
}

/// Keys fetched from `keys_url`, and when.
#[derive(Default)]
struct Fetched {
    url: Option<String>,
    keys: Vec<TrustedKey>,
    tried: Option<(Instant, bool)>,
}

/// The signature checks of one runtime: the fetched keys and their cache file.
pub struct Signing {
    default_cache: PathBuf,
    fetched: tokio::sync::Mutex<Fetched>,
    http: Mutex<Option<reqwest::Client>>,
}

impl Signing {
    /// Checks that keep fetched keys at `default_cache` unless `[signing].key_cache_path` says
    /// otherwise.
    pub fn new(default_cache: PathBuf) -> Signing {
        Signing { default_cache, fetched: tokio::sync::Mutex::default(), http: Mutex::new(None) }
    }

    /// Decides whether `subject` may run under `cfg`; `plain_http` says whether its registry
    /// speaks plain HTTP (awaited only when the registry is asked).
    ///
    /// # Errors
    /// Why it may not (only when `require_signature` is on).
    pub async fn check(
        &self,
        cfg: &SigningConfig,
        subject: &Subject<'_>,
        plain_http: impl Future<Output = bool>,
    ) -> Result<Verdict, String> {
        let image = subject.image;
        if !cfg.enabled {
            return Ok(Verdict::NotChecked("signature checks are off ([signing].enabled = false)".into()));
        }
        if let Some(entry) = cfg.unsigned_allowed_registries.iter().find(|e| image.is_under(e)) {
            return Ok(Verdict::NotChecked(format!("{entry} is in [signing].unsigned_allowed_registries")));
        }
        let unsigned = |why: String| {
            if cfg.require_signature {
                Err(format!("{why}, and [signing].require_signature is on"))
            } else {
                Ok(Verdict::Unsigned(why))
            }
        };
        let mut keys = cfg.trusted_keys.clone();
        keys.extend(self.fetched_keys(cfg).await);
        if keys.is_empty() {
            return unsigned("there are no trusted keys ([[signing.trusted_keys]] or [signing].keys_url)".into());
        }
        let Some(digest) = subject.digest else {
            return unsigned(format!("{} has no registry digest to check a signature for", image.repository()));
        };
        let lookup = async { signature_layers(image, digest, plain_http.await).await };
        let layers = match tokio::time::timeout(NETWORK_DEADLINE, lookup).await {
            Ok(Ok(layers)) => layers,
            Ok(Err(e)) => return unsigned(format!("cannot look up its signatures: {e}")),
            Err(_) => return unsigned(format!("its registry did not answer within {} s", NETWORK_DEADLINE.as_secs())),
        };
        if let Some(key_id) = first_signer(&keys, &layers) {
            return Ok(Verdict::Verified { key_id });
        }
        let names: Vec<&str> = keys.iter().map(|k| k.key_id.as_str()).collect();
        unsigned(format!(
            "no valid signature by a trusted key ({} signature(s) found for {digest}; keys: {})",
            layers.len(),
            names.join(", ")
        ))
    }

    /// The keys served at `keys_url`: fetched when stale, from the cache file when the
    /// fetch fails.
    async fn fetched_keys(&self, cfg: &SigningConfig) -> Vec<TrustedKey> {
        let Some(url) = cfg.keys_url.as_ref().map(ToString::to_string) else { return Vec::new() };
        let cache = cfg.key_cache_path.clone().unwrap_or_else(|| self.default_cache.clone());
        let mut fetched = self.fetched.lock().await;
        if fetched.url.as_deref() != Some(url.as_str()) {
            *fetched = Fetched { url: Some(url.clone()), ..Fetched::default() };
        }
        let due = match fetched.tried {
            None => true,
            Some((at, ok)) => at.elapsed() >= if ok { KEYS_FRESH_FOR } else { KEYS_RETRY_AFTER },
        };
        if due {
            match self.fetch(&url).await {
                Ok(keys) => {
                    info!(%url, keys = keys.len(), "Fetched the trusted signing keys");
                    save_cache(&cache, &keys);
                    fetched.keys = keys;
                    fetched.tried = Some((Instant::now(), true));
                }
                Err(e) => {
                    fetched.tried = Some((Instant::now(), false));
                    if fetched.keys.is_empty() {
                        fetched.keys = crate::fsutil::read_json_or_default(&cache, "cache of signing keys");
                    }
                    warn!(%url, error = %e, cached = fetched.keys.len(), "cannot fetch the trusted signing keys; using the cached ones");
                }
            }
        }
        fetched.keys.clone()
    }

    async fn fetch(&self, url: &str) -> Result<Vec<TrustedKey>, String> {
        let client = self.http();
        let answer = client.get(url).timeout(NETWORK_DEADLINE).send().await.map_err(|e| e.to_string())?;
        let answer = answer.error_for_status().map_err(|e| e.to_string())?;
        let body = answer.bytes().await.map_err(|e| e.to_string())?;
        let keys: Vec<TrustedKey> =
            serde_json::from_slice(&body).map_err(|e| format!("not a JSON list of trusted keys: {e}"))?;
        Ok(keys.into_iter().filter(|k| usable(k, url)).collect())
    }

    fn http(&self) -> reqwest::Client {
        let mut slot = self.http.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.get_or_insert_with(|| {
            crate::tls::install_crypto_provider();
            reqwest::Client::builder()
                .user_agent(concat!("archipelag-island/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("an HTTP client with the default TLS settings")
        })
        .clone()
    }
}

/// Whether a served key can be used; says why not.
fn usable(key: &TrustedKey, url: &str) -> bool {
    let ok = scheme(&key.algorithm).is_ok() && key.public_key.contains("BEGIN PUBLIC KEY");
    if !ok {
        warn!(%url, key_id = %key.key_id, algorithm = %key.algorithm, "ignoring a served signing key: not a PEM public key of a known algorithm");
    }
    ok
}

fn save_cache(path: &std::path::Path, keys: &[TrustedKey]) {
    let json = serde_json::to_vec_pretty(keys).expect("keys serialize");
    if let Err(e) = crate::fsutil::write_atomic(path, &json) {
        warn!(path = %path.display(), error = %e, "cannot cache the signing keys");
    }
}

/// The sigstore scheme for a `TrustedKey.algorithm`.
///
/// # Errors
/// An algorithm Island does not know, naming those it does.
pub fn scheme(algorithm: &str) -> Result<SigningScheme, String> {
    match algorithm {
        "ecdsa-p256" => Ok(SigningScheme::ECDSA_P256_SHA256_ASN1),
        "ecdsa-p384" => Ok(SigningScheme::ECDSA_P384_SHA384_ASN1),
        "ed25519" => Ok(SigningScheme::ED25519),
        other => Err(format!("unknown signature algorithm \"{other}\" (ecdsa-p256, ecdsa-p384 or ed25519)")),
    }
}

/// The cosign signatures stored for `digest` in the image's registry.
async fn signature_layers(image: &ImageRef, digest: &str, plain_http: bool) -> Result<Vec<SignatureLayer>, String> {
    let registry = image.registry.clone();
    let protocol = if plain_http { ClientProtocol::HttpsExcept(vec![registry.clone()]) } else { ClientProtocol::Https };
    crate::tls::install_crypto_provider();
    let mut client = ClientBuilder::default()
        .with_oci_client_config(ClientConfig { protocol, ..ClientConfig::default() })
        .build()
        .map_err(|e| format!("cannot set up the signature client: {e}"))?;
    let reference = OciReference::with_digest(registry, image.path.clone(), digest.to_string());
    debug!(%reference, "looking up the image's signatures");
    client.trusted_signature_layers(&Auth::Anonymous, &reference).await.map_err(|e| e.to_string())
}

/// The first of `keys` that signed one of `layers`.
fn first_signer(keys: &[TrustedKey], layers: &[SignatureLayer]) -> Option<String> {
    keys.iter().find_map(|key| {
        let verifier = match scheme(&key.algorithm)
            .and_then(|s| PublicKeyVerifier::new(key.public_key.as_bytes(), &s).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                warn!(key_id = %key.key_id, error = %e, "a trusted signing key cannot be used");
                return None;
            }
        };
        let constraints: VerificationConstraintVec = vec![Box::new(verifier)];
        sigstore::cosign::verify_constraints(layers, constraints.iter()).is_ok().then(|| key.key_id.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageRef {
        ImageRef::parse("ghcr.io/archipelag-io/llm-chat:1").unwrap()
    }

    fn subject(image: &ImageRef) -> Subject<'_> {
        Subject { image, digest: None }
    }

    #[tokio::test]
    async fn off_or_exempt_registries_are_not_checked() {
        let signing = Signing::new(std::env::temp_dir().join("unused-keys.json"));
        let image = image();
        let off = SigningConfig { enabled: false, require_signature: true, ..SigningConfig::default() };
        assert!(matches!(signing.check(&off, &subject(&image), async { false }).await, Ok(Verdict::NotChecked(_))));
        let exempt = SigningConfig {
            require_signature: true,
            unsigned_allowed_registries: vec!["ghcr.io/archipelag-io".into()],
            ..SigningConfig::default()
        };
        assert!(matches!(signing.check(&exempt, &subject(&image), async { false }).await, Ok(Verdict::NotChecked(_))));
        let evil = ImageRef::parse("ghcr.io/archipelag-io-evil/x").unwrap();
        let e = signing.check(&exempt, &subject(&evil), async { false }).await.unwrap_err();
        assert!(e.contains("no trusted keys") && e.contains("require_signature"), "{e}");
    }

    #[tokio::test]
    async fn without_keys_or_digest_an_image_is_unsigned_or_refused() {
        let signing = Signing::new(std::env::temp_dir().join("unused-keys.json"));
        let image = image();
        let lenient = SigningConfig::default();
        assert!(matches!(signing.check(&lenient, &subject(&image), async { false }).await, Ok(Verdict::Unsigned(_))));
        let key = TrustedKey {
            key_id: "k".into(),
            public_key: "-----BEGIN PUBLIC KEY-----".into(),
            algorithm: "ecdsa-p256".into(),
            issuer: None,
        };
        let strict = SigningConfig { require_signature: true, trusted_keys: vec![key], ..SigningConfig::default() };
        let e = signing.check(&strict, &subject(&image), async { false }).await.unwrap_err();
        assert!(e.contains("has no registry digest"), "{e}");
    }

    #[test]
    fn algorithms_are_named_as_the_config_names_them() {
        for name in TrustedKey::ALGORITHMS {
            assert!(scheme(name).is_ok(), "{name}");
        }
        assert!(scheme("rsa").unwrap_err().contains("ecdsa-p256, ecdsa-p384 or ed25519"));
    }
}
