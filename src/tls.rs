//! TLS set-up shared by every HTTPS client: rustls with the ring provider (the same one
//! async-nats uses), installed once per process.

/// Installs ring as the process's rustls provider unless one is installed already.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
