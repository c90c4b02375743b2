//! The Docker check behind the settings screen: a real engine is found with its version;
//! no engine, or something else on the socket, is reported with what to do.
#![cfg(unix)]

use island::devnet::docker_engine::DockerEngine;
use island::devnet::services::{Service, present_or_skip as needs};
use island::runtimes::docker_probe::{DockerStatus, probe_at};

#[tokio::test]
async fn no_engine_is_missing_with_an_install_hint() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("unix://{}/docker.sock", dir.path().display());
    match probe_at(&endpoint).await {
        DockerStatus::Missing { endpoint: e, hint } => {
            assert_eq!(e, endpoint);
            assert!(hint.contains("Install"), "{hint}");
        }
        other => panic!("expected Missing, got {other:?}"),
    }
    // Nothing listens on a closed loopback port either. The port stays bound (without a
    // listen) while the probe runs, so no other test can take it meanwhile and answer.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = held.local_addr().unwrap().port();
    let status = probe_at(&format!("tcp://127.0.0.1:{port}")).await;
    assert!(matches!(status, DockerStatus::Missing { .. }), "{status:?}");
    drop(held);
}

#[tokio::test]
async fn something_else_on_the_socket_is_unreachable_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut request = [0u8; 256];
            let _ = s.read(&mut request).await;
            let _ = s.write_all(b"HTTP/1.0 404 Not Found\r\n\r\nno").await;
        }
    });
    match probe_at(&format!("unix://{}", path.display())).await {
        DockerStatus::Unreachable { reason, hint, .. } => {
            assert!(reason.contains("404"), "{reason}");
            assert!(hint.contains("DOCKER_HOST"), "{hint}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_running_engine_is_found_with_its_version() {
    if !needs(&[Service::DockerEngine]) {
        return;
    }
    let engine = match DockerEngine::start().await {
        Ok(e) => e,
        Err(e) => {
            // Installed but unable to run here (not root, no cgroups): say so loudly.
            assert!(!island::devnet::services::in_ci(), "CI must run the Docker engine test, but {e}");
            island::devnet::services::say_skipped(&format!("the Docker engine test: {e}"));
            return;
        }
    };
    match probe_at(&engine.host()).await {
        DockerStatus::Available { version, api_version, .. } => {
            assert!(version.chars().next().is_some_and(|c| c.is_ascii_digit()), "{version}");
            assert!(api_version.starts_with("1."), "{api_version}");
        }
        other => panic!("expected Available, got {other:?}"),
    }
}
