//! A `nats-server` process with JetStream, on a free loopback port, with its store in a
//! temporary directory; stopped when dropped. Used by the coordinator double (tests and
//! `island devnet`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a starting server may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// How to run the server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Require this user and password.
    pub auth: Option<(String, String)>,
    /// Largest message the server takes (NATS's default is 1 MiB).
    pub max_payload: Option<usize>,
}

/// A running `nats-server`.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
    options: ServerOptions,
}

impl NatsServer {
    /// Starts `nats-server` (from `$NATS_SERVER_BIN` or `PATH`) and waits until it accepts
    /// connections.
    ///
    /// # Errors
    /// When the binary is missing or the server does not come up.
    pub fn start(options: ServerOptions) -> io::Result<NatsServer> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
        NatsServer::start_on(port, options)
    }

    /// Like [`NatsServer::start`] on a given loopback port.
    ///
    /// # Errors
    /// As [`NatsServer::start`].
    pub fn start_on(port: u16, options: ServerOptions) -> io::Result<NatsServer> {
        let store = tempfile::Builder::new().prefix("island-nats-").tempdir()?;
        let mut server = NatsServer { child: None, port, store, options };
        server.spawn()?;
        Ok(server)
    }

    fn binary() -> PathBuf {
        std::env::var_os("NATS_SERVER_BIN").map_or_else(|| PathBuf::from("nats-server"), PathBuf::from)
    }

    fn spawn(&mut self) -> io::Result<()> {
        let conf = self.store.path().join("server.conf");
        let mut text = String::new();
        if let Some(max) = self.options.max_payload {
            text.push_str(&format!("max_payload: {max}\n"));
        }
        std::fs::write(&conf, text)?;
        let mut cmd = Command::new(Self::binary());
        cmd.arg("-c").arg(&conf).args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"]);
        cmd.arg(self.store.path().join("js"));
        if let Some((user, pass)) = &self.options.auth {
            cmd.args(["--user", user, "--pass", pass]);
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().map_err(|e| {
            let bin = Self::binary();
            io::Error::new(
                e.kind(),
                format!("cannot start nats-server ({}): {e} (Debian package nats-server)", bin.display()),
            )
        })?;
        self.child = Some(child);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let end = Instant::now() + START_DEADLINE;
        // The server gives no readiness signal but its listening socket, so connect until it answers.
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(io::Error::other(format!("nats-server exited at start: {status}")));
            }
            if Instant::now() > end {
                return Err(io::Error::other("nats-server did not accept connections within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// `nats://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (SIGTERM, then kill); streams stay in the store.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            super::stop_gracefully(&mut child, Duration::from_secs(5));
        }
    }

    /// Starts the server again on the same port with the same store.
    ///
    /// # Errors
    /// As [`NatsServer::start`].
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.spawn()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
