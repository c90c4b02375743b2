//! Shared by the container tests: a private Docker engine per test with an image built here
//! (`FROM scratch`, the static busybox and a shell Cargo that speaks protocol §9), the
//! runtime on it, and a private registry to pull from.
#![allow(dead_code)]

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use island::config::Config;
use island::devnet::cargo_image;
use island::devnet::docker_engine::DockerEngine;
use island::devnet::services::{Service, in_ci, present_or_skip as needs, say_skipped};
use island::home::IslandHome;
use island::jobs::{JobId, JobSpec, RuntimeKind};
use island::runtimes::container::ContainerRuntime;
use island::runtimes::{CargoEvent, CargoIo, Error, Runtime};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const IMAGE: &str = "island-test/cargo:local";
pub const ISLAND: &str = "test-island-1";

pub struct Setup {
    pub engine: DockerEngine,
    pub runtime: ContainerRuntime,
    /// Where the runtime keeps its records.
    pub home: tempfile::TempDir,
}

pub fn docker(engine: &DockerEngine, args: &[&str]) -> String {
    let out = Command::new("docker").env("DOCKER_HOST", engine.host()).args(args).output().expect("the docker CLI");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Imports the test image: a root file system with busybox, its applets and the Cargo.
pub fn build_image(engine: &DockerEngine) {
    build_image_as(engine, IMAGE, &[]);
}

/// Imports the test image as `tag`, with `changes` (Dockerfile instructions) on top.
pub fn build_image_as(engine: &DockerEngine, tag: &str, changes: &[&str]) {
    cargo_image::build(&engine.host(), tag, changes).expect("the test image builds");
}

pub fn config() -> Config {
    let mut c = Config::default();
    // The start-up preload must not fetch gigabytes from Hugging Face during a test.
    c.model_cache.hf_endpoint = Some("http://127.0.0.1:9".parse().unwrap());
    c.registry.allowed = vec!["docker.io/island-test".into()];
    c.workload.resource_limits.memory_mb = island::config::Bounded::new(64).unwrap();
    c.workload.job_timeout = Duration::from_secs(30);
    c
}

pub async fn setup(config: Config) -> Option<Setup> {
    if !needs(&[Service::DockerEngine, Service::BusyboxStatic]) {
        return None;
    }
    let engine = match DockerEngine::start().await {
        Ok(e) => e,
        Err(e) => {
            assert!(!in_ci(), "CI must run the container tests, but {e}");
            say_skipped(&format!("the container tests: {e}"));
            return None;
        }
    };
    build_image(&engine);
    let home = tempfile::tempdir().unwrap();
    let runtime = runtime_on(&engine.host(), &config, &home);
    runtime.check().await.expect("the engine answers");
    runtime.recover(ISLAND).await;
    Some(Setup { engine, runtime, home })
}

/// A runtime for the engine at `endpoint`, its records in `home`.
pub fn runtime_on(endpoint: &str, config: &Config, home: &tempfile::TempDir) -> ContainerRuntime {
    ContainerRuntime::new(endpoint, config, &IslandHome::at(home.path())).unwrap()
}

pub fn job(id: &str, input: serde_json::Value) -> JobSpec {
    let mut spec = JobSpec::new(JobId::from(id), RuntimeKind::Container, input);
    spec.container_image = Some(IMAGE.into());
    spec
}

/// Runs `spec`, collecting what the Cargo said; `cancel` may be fired by the caller.
pub async fn run(
    rt: &ContainerRuntime,
    spec: &JobSpec,
    cancel: CancellationToken,
) -> (Result<(), Error>, Vec<CargoEvent>) {
    let (tx, mut rx) = mpsc::channel(64);
    let collect = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(e) = rx.recv().await {
            all.push(e);
        }
        all
    });
    let result = rt.run(spec, CargoIo { cancel, events: tx, pulls: None, model: None }).await;
    (result, collect.await.unwrap())
}

pub fn tokens(events: &[CargoEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| if let CargoEvent::Token { content } = e { Some(content.clone()) } else { None })
        .collect()
}

/// The containers this Island has on the engine.
pub async fn ours(engine: &DockerEngine) -> Vec<String> {
    labelled(engine, ISLAND).await
}

/// The containers labelled with Island `island`.
pub async fn labelled(engine: &DockerEngine, island: &str) -> Vec<String> {
    let docker = Docker::connect_with_host(&engine.host()).unwrap();
    let filters = HashMap::from([("label", vec![format!("io.archipelag.island={island}")])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let found = docker.list_containers(Some(options)).await.unwrap();
    found.into_iter().flat_map(|c| c.names.unwrap_or_default()).collect()
}

pub async fn collect(mut rx: mpsc::Receiver<CargoEvent>) -> Vec<CargoEvent> {
    let mut all = Vec::new();
    while let Some(e) = rx.recv().await {
        all.push(e);
    }
    all
}

/// What the Cargo says its version is.
pub async fn version(rt: &ContainerRuntime, spec: &JobSpec) -> String {
    let (result, events) = run(rt, spec, CancellationToken::new()).await;
    result.expect("runs");
    tokens(&events).join("")
}

/// An engine with the test image and a private registry that the runtime may pull from
/// (the config it was given, to change further).
pub async fn with_registry() -> Option<(Setup, island::devnet::registry::LocalRegistry, Config)> {
    let s = setup(config()).await?;
    if !needs(&[Service::DockerRegistry]) {
        return None;
    }
    let registry = island::devnet::registry::LocalRegistry::start().await.expect("docker-registry starts");
    let mut c = config();
    c.registry.allowed = vec![format!("{}/island-test", registry.host())];
    s.runtime.apply_config(&c);
    Some((s, registry, c))
}

/// Pushes the test image to the registry as `remote`, leaving no local tag of that name.
pub fn pushed(s: &Setup, remote: &str) {
    docker(&s.engine, &["tag", IMAGE, remote]);
    docker(&s.engine, &["push", remote]);
    docker(&s.engine, &["rmi", remote]);
}

/// A new ECDSA P-256 key pair, as `cosign generate-key-pair` makes: the public half as a
/// trusted key named `key_id`, the private half to sign with.
pub fn new_key(key_id: &str) -> (island::config::TrustedKey, sigstore::crypto::SigStoreSigner) {
    let signer = sigstore::crypto::SigningScheme::ECDSA_P256_SHA256_ASN1.create_signer().unwrap();
    let public_key = signer.to_sigstore_keypair().unwrap().public_key_to_pem().unwrap();
    let key =
        island::config::TrustedKey { key_id: key_id.into(), public_key, algorithm: "ecdsa-p256".into(), issuer: None };
    (key, signer)
}

/// Signs `image` (in a loopback registry) with `signer` and pushes the signature next to
/// it, as `cosign sign --key` does.
pub async fn sign(image: &str, signer: sigstore::crypto::SigStoreSigner) {
    use sigstore::cosign::constraint::{Constraint, PrivateKeySigner};
    use sigstore::cosign::{ClientBuilder, CosignCapabilities, SignatureLayer};
    use sigstore::registry::{Auth, ClientConfig, ClientProtocol, OciReference};
    island::tls::install_crypto_provider();
    let reference: OciReference = image.parse().unwrap();
    let config = ClientConfig { protocol: ClientProtocol::Http, ..ClientConfig::default() };
    let mut client = ClientBuilder::default().with_oci_client_config(config).build().unwrap();
    let (signature_ref, digest) = client.triangulate(&reference, &Auth::Anonymous).await.unwrap();
    let mut layer = SignatureLayer::new_unsigned(&reference, &digest).unwrap();
    PrivateKeySigner::new_with_signer(signer).add_constraint(&mut layer).unwrap();
    client.push_signature(None, &Auth::Anonymous, &signature_ref, vec![layer]).await.unwrap();
}

/// Whether the engine has an image of this reference.
pub fn has_image(engine: &DockerEngine, reference: &str) -> bool {
    Command::new("docker")
        .env("DOCKER_HOST", engine.host())
        .args(["image", "inspect", reference])
        .output()
        .expect("the docker CLI")
        .status
        .success()
}
