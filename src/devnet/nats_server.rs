//! A `nats-server` process with JetStream, on a free loopback port, with its store in a
//! temporary directory; stopped when dropped. Used by the coordinator double (tests and
//! `island devnet`). [`NatsServer::start_cluster`] starts several as one cluster with
//! clustered JetStream, each node killable and restartable on its own.

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

/// A node's place in a cluster.
#[derive(Debug, Clone)]
struct ClusterNode {
    /// The node's name (`island-n<i>`).
    name: String,
    /// Its route port.
    route_port: u16,
    /// The other nodes' route ports.
    peers: Vec<u16>,
}

/// A running `nats-server`.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
    options: ServerOptions,
    cluster: Option<ClusterNode>,
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
        let mut server = NatsServer { child: None, port, store, options, cluster: None };
        server.spawn()?;
        Ok(server)
    }

    /// Starts `nodes` servers as one cluster (`island-devnet`) with clustered JetStream, each
    /// on free loopback ports. They accept connections when this returns; JetStream needs a
    /// moment more to elect its leaders (the caller waits for an answer to an API request).
    ///
    /// # Errors
    /// As [`NatsServer::start`].
    pub fn start_cluster(nodes: usize, options: ServerOptions) -> io::Result<Vec<NatsServer>> {
        let free = || -> io::Result<u16> { Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port()) };
        let ports: Vec<(u16, u16)> = (0..nodes).map(|_| Ok((free()?, free()?))).collect::<io::Result<_>>()?;
        let mut servers = Vec::new();
        for (i, &(port, route_port)) in ports.iter().enumerate() {
            let store = tempfile::Builder::new().prefix("island-nats-").tempdir()?;
            let peers = ports.iter().filter(|(p, _)| *p != port).map(|(_, r)| *r).collect();
            let cluster = Some(ClusterNode { name: format!("island-n{}", i + 1), route_port, peers });
            let mut server = NatsServer { child: None, port, store, options: options.clone(), cluster };
            server.launch()?;
            servers.push(server);
        }
        for server in &mut servers {
            server.wait_ready()?;
        }
        Ok(servers)
    }

    fn binary() -> PathBuf {
        std::env::var_os("NATS_SERVER_BIN").map_or_else(|| PathBuf::from("nats-server"), PathBuf::from)
    }

    fn spawn(&mut self) -> io::Result<()> {
        self.launch()?;
        self.wait_ready()
    }

    /// The configuration file: limits, and the cluster block of a clustered node.
    fn config_text(&self) -> String {
        let mut text = String::new();
        if let Some(max) = self.options.max_payload {
            text.push_str(&format!("max_payload: {max}\n"));
        }
        if let Some(c) = &self.cluster {
            let routes: Vec<String> = c.peers.iter().map(|p| format!("\"nats-route://127.0.0.1:{p}\"")).collect();
            text.push_str(&format!(
                "server_name: \"{}\"\ncluster {{\n  name: \"island-devnet\"\n  listen: \"127.0.0.1:{}\"\n  routes: [{}]\n}}\n",
                c.name,
                c.route_port,
                routes.join(", ")
            ));
        }
        text
    }

    /// Starts the process without waiting for it (cluster nodes wait for each other).
    fn launch(&mut self) -> io::Result<()> {
        let conf = self.store.path().join("server.conf");
        std::fs::write(&conf, self.config_text())?;
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
        Ok(())
    }

    /// Waits until the server accepts connections.
    fn wait_ready(&mut self) -> io::Result<()> {
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

    /// Kills the server at once (SIGKILL), as a machine that dies; streams stay in the store.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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

/// Waits until a new cluster's JetStream answers (its meta leader is elected), at most 30 s:
/// asking for a stream that does not exist gets "not found" once it does.
pub(super) async fn wait_for_jetstream(js: &async_nats::jetstream::Context) -> Result<(), async_nats::Error> {
    use async_nats::jetstream::context::GetStreamErrorKind;
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match js.get_stream("island-readiness-probe").await {
            Ok(_) => return Ok(()),
            Err(e)
                if matches!(e.kind(), GetStreamErrorKind::JetStream(j)
                if j.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND) =>
            {
                return Ok(());
            }
            Err(e) if tokio::time::Instant::now() > end => return Err(e.into()),
            // The cluster gives no signal when its leader is elected; ask again shortly.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
