//! Container images against a real Docker engine and a private registry: pulls with
//! progress, moving tags, cosign signatures, the cache of pulled images and preloading.

mod common;
mod containers;

use containers::*;

use island::jobs::JobId;
use island::runtimes::container::ContainerRuntime;
use island::runtimes::{CargoIo, Error, Runtime};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn an_image_missing_here_is_pulled_with_progress_then_runs() {
    let Some((s, registry, _)) = with_registry().await else { return };
    let remote = format!("{}/island-test/cargo:1", registry.host());
    pushed(&s, &remote);
    docker(&s.engine, &["rmi", IMAGE]);
    let mut spec = job("pull-1", json!({"mode": "tokens"}));
    spec.container_image = Some(remote.clone());
    let (tx, rx) = mpsc::channel(64);
    let (pulls_tx, mut pulls) = mpsc::unbounded_channel();
    let io = CargoIo { cancel: CancellationToken::new(), events: tx, pulls: Some(pulls_tx), model: None };
    let (result, events) = tokio::join!(s.runtime.run(&spec, io), collect(rx));
    result.expect("pulled and ran");
    assert_eq!(tokens(&events), ["héllo ", "wörld €"]);
    let mut seen = Vec::new();
    while let Ok(p) = pulls.try_recv() {
        seen.push(p);
    }
    let last = seen.last().expect("pull progress");
    assert!(last.finished && last.image == remote, "{seen:?}");
    assert!(last.done > 0 && last.total == Some(last.done), "the whole image came: {seen:?}");
}

#[tokio::test]
async fn a_moving_tag_is_refreshed_at_most_once_per_warm_ttl() {
    let Some((s, registry, mut c)) = with_registry().await else { return };
    let latest = format!("{}/island-test/cargo:latest", registry.host());
    pushed(&s, &latest);
    let mut spec = job("v-1", json!({"mode": "version"}));
    spec.container_image = Some(latest.clone());
    assert_eq!(version(&s.runtime, &spec).await, "version:1", "pulled");
    // A new image under the same tag in the registry; the engine keeps the old one here.
    build_image_as(&s.engine, "island-test/cargo:v2", &["ENV CARGO_VERSION=2"]);
    docker(&s.engine, &["tag", "island-test/cargo:v2", &latest]);
    docker(&s.engine, &["push", &latest]);
    docker(&s.engine, &["tag", IMAGE, &latest]);
    spec.id = JobId::from("v-2");
    assert_eq!(version(&s.runtime, &spec).await, "version:1", "within the warm ttl: not pulled again");
    c.cache.warm_ttl_seconds = 0;
    s.runtime.apply_config(&c);
    spec.id = JobId::from("v-3");
    assert_eq!(version(&s.runtime, &spec).await, "version:2", "past it: refreshed");
}

/// Runs `image` as a token job, returning how it ended.
async fn run_image(rt: &ContainerRuntime, id: &str, image: &str) -> Result<(), Error> {
    let mut spec = job(id, json!({"mode": "tokens"}));
    spec.container_image = Some(image.into());
    run(rt, &spec, CancellationToken::new()).await.0
}

#[tokio::test]
async fn a_signed_image_runs_and_an_unsigned_or_foreign_signed_one_never_does() {
    let Some((s, registry, mut c)) = with_registry().await else { return };
    let image = |name: &str| format!("{}/island-test/{name}:1", registry.host());
    for name in ["signed", "unsigned", "foreign"] {
        pushed(&s, &image(name));
    }
    let (trusted, ours_signer) = new_key("island-test-2026");
    let (_, foreign_signer) = new_key("someone-else");
    sign(&image("signed"), ours_signer).await;
    sign(&image("foreign"), foreign_signer).await;
    c.signing.require_signature = true;
    c.signing.trusted_keys = vec![trusted];
    s.runtime.apply_config(&c);

    run_image(&s.runtime, "signed-1", &image("signed")).await.expect("a trusted key signed it");
    for name in ["unsigned", "foreign"] {
        let e = run_image(&s.runtime, &format!("{name}-1"), &image(name)).await.expect_err(name);
        let text = e.to_string();
        assert!(matches!(e, Error::ImageRefused(_)), "{e:?}");
        assert!(text.contains("signature verification failed: no valid signature by a trusted key"), "{text}");
        assert!(text.contains("island-test-2026"), "names the keys it tried: {text}");
    }
    assert!(ours(&s.engine).await.is_empty(), "no container was made for a refused image");

    // Without require_signature an unsigned image runs (with a warning); an exempt registry
    // is not checked at all.
    c.signing.require_signature = false;
    s.runtime.apply_config(&c);
    run_image(&s.runtime, "unsigned-2", &image("unsigned")).await.expect("runs, unsigned");
    c.signing.require_signature = true;
    c.signing.unsigned_allowed_registries = vec![format!("{}/island-test", registry.host())];
    s.runtime.apply_config(&c);
    run_image(&s.runtime, "unsigned-3", &image("unsigned")).await.expect("exempt registry");
}

#[tokio::test]
async fn keys_from_keys_url_verify_images_and_are_cached_for_when_it_is_down() {
    let Some((s, registry, mut c)) = with_registry().await else { return };
    let signed = format!("{}/island-test/signed:1", registry.host());
    pushed(&s, &signed);
    let (key, signer) = new_key("served-key");
    sign(&signed, signer).await;
    let server = island::devnet::HttpServer::start().await.unwrap();
    server.route("/keys.json", "application/json", serde_json::to_vec(&[key]).unwrap());
    c.signing.require_signature = true;
    c.signing.keys_url = Some(format!("{}/keys.json", server.base_url()).parse().unwrap());
    s.runtime.apply_config(&c);
    run_image(&s.runtime, "served-1", &signed).await.expect("verified with the served key");
    drop(server);
    // A new start while the key server is down: the cached keys still verify.
    let restarted = runtime_on(&s.engine.host(), &c, &s.home);
    restarted.check().await.unwrap();
    run_image(&restarted, "served-2", &signed).await.expect("verified with the cached key");
    let cached = std::fs::read_to_string(s.home.path().join("signing-keys.json")).unwrap();
    assert!(cached.contains("served-key"), "{cached}");
}

#[tokio::test]
async fn beyond_max_cached_images_the_least_recently_used_pulls_go_and_the_owners_images_stay() {
    let Some((s, registry, mut c)) = with_registry().await else { return };
    let image = |name: &str| format!("{}/island-test/{name}:1", registry.host());
    for name in ["a", "b", "owners"] {
        pushed(&s, &image(name));
    }
    docker(&s.engine, &["pull", &image("owners")]);
    c.cache.max_cached_images = 1;
    s.runtime.apply_config(&c);
    run_image(&s.runtime, "a-1", &image("a")).await.expect("a runs");
    run_image(&s.runtime, "owners-1", &image("owners")).await.expect("the owner's image runs");
    assert!(has_image(&s.engine, &image("a")), "one pulled image is within the limit");
    run_image(&s.runtime, "b-1", &image("b")).await.expect("b runs");
    assert!(!has_image(&s.engine, &image("a")), "a, the least recently used pull, is removed");
    assert!(has_image(&s.engine, &image("b")));
    assert!(has_image(&s.engine, &image("owners")), "an image the owner had is never removed");
    assert!(has_image(&s.engine, IMAGE), "nor one built here");
    let record = std::fs::read_to_string(s.home.path().join("pulled-images.json")).unwrap();
    assert!(record.contains("/island-test/b:1") && !record.contains("owners"), "{record}");
    let kept = s.runtime.image_cache();
    assert_eq!(kept.images, 1, "the heartbeat counts the one image Island keeps: {kept:?}");
    assert!(kept.size_mb >= 1, "and its size: {kept:?}");
}

#[tokio::test]
async fn preload_pulls_the_listed_images_when_the_engine_is_found() {
    let Some((s, registry, mut c)) = with_registry().await else { return };
    let wanted = format!("{}/island-test/preloaded:1", registry.host());
    pushed(&s, &wanted);
    c.cache.enable_preload = true;
    c.cache.preload_images = vec!["ghcr.io/archipelag-io-evil/x:1".into(), wanted.clone()];
    let runtime = runtime_on(&s.engine.host(), &c, &s.home);
    runtime.check().await.unwrap();
    runtime.recover(ISLAND).await;
    // The preload runs in the background and says nothing to the test: watch the engine.
    // The record is written just after the pull ends, so wait for both.
    let record = || std::fs::read_to_string(s.home.path().join("pulled-images.json")).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !has_image(&s.engine, &wanted) || !record().contains("preloaded:1") {
        let why = format!("{wanted} was not preloaded and recorded within 60 s: {}", record());
        assert!(std::time::Instant::now() < deadline, "{why}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
