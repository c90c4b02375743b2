//! `installers/install.sh` against a local HTTP server that serves a release folder made from
//! this build by `scripts/release-asset` (the binary, its .sha256, and a signature by a key of
//! the test's own): a good
//! install, a re-install that keeps the config, a checksum and a signature that do not match
//! (nothing installed), and a platform without a binary.

#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use island::devnet::HttpServer;
use sha2::{Digest, Sha256};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/installers/install.sh");

fn asset() -> String {
    let os = if cfg!(target_os = "macos") { "darwin" } else { "linux" };
    format!("island-{os}-{}", std::env::consts::ARCH)
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().expect("openssl (Debian package openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A signing key pair in `dir`: (private, public).
fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (private, public) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pub")));
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", private.to_str().unwrap()]);
    openssl(&["ec", "-in", private.to_str().unwrap(), "-pubout", "-out", public.to_str().unwrap()]);
    (private, public)
}

struct Release {
    rt: tokio::runtime::Runtime,
    server: HttpServer,
    dir: tempfile::TempDir,
    public: PathBuf,
}

impl Release {
    /// Serves this build's `island` as the release, made by `scripts/release-asset` as the
    /// release workflow makes it, signed by a fresh key.
    fn new() -> Release {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(HttpServer::start()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = key_pair(dir.path(), "release");
        let release = Release { rt, server, dir, public };
        let dist = release.dir.path().join("dist");
        let out = release.asset(&private, &dist);
        assert!(out.status.success(), "{}", said(&out));
        for name in [asset(), format!("{}.sha256", asset()), format!("{}.sig", asset())] {
            release.server.route(
                &format!("/{name}"),
                "application/octet-stream",
                std::fs::read(dist.join(&name)).unwrap(),
            );
        }
        release
    }

    /// Runs `scripts/release-asset` on this build's binary, signing with `key`.
    fn asset(&self, key: &Path, dist: &Path) -> Output {
        Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/release-asset"))
            .arg(common::island_bin())
            .arg(dist)
            .arg(asset())
            .env("ISLAND_RELEASE_SIGNING_KEY", std::fs::read_to_string(key).unwrap())
            .env("ISLAND_RELEASE_PUBLIC_KEY", &self.public)
            .output()
            .unwrap()
    }

    /// Serves the binary signed with `key`, with `checksum` in place of its own if given.
    fn publish(&self, key: &Path, checksum: Option<&str>) {
        let bin = std::fs::read(common::island_bin()).unwrap();
        let file = self.dir.path().join(asset());
        std::fs::write(&file, &bin).unwrap();
        let sig = self.dir.path().join("sig");
        openssl(
            &["dgst", "-sha256", "-sign", key.to_str().unwrap(), "-out", sig.to_str().unwrap()]
                .into_iter()
                .chain([file.to_str().unwrap()])
                .collect::<Vec<_>>(),
        );
        let sum = checksum.map_or_else(|| hex::encode(Sha256::digest(&bin)), str::to_string);
        let name = asset();
        let octets = "application/octet-stream";
        self.server.route(&format!("/{name}"), octets, bin);
        self.server.route(&format!("/{name}.sha256"), "text/plain", format!("{sum}  {name}\n").into_bytes());
        self.server.route(&format!("/{name}.sig"), octets, std::fs::read(&sig).unwrap());
    }

    /// Runs the script for a user whose home is `home`, with `path_prefix` first on PATH.
    fn install(&self, home: &Path, path_prefix: Option<&Path>) -> Output {
        let _rt = self.rt.enter();
        let path = std::env::var("PATH").unwrap_or_default();
        let path = path_prefix.map_or(path.clone(), |p| format!("{}:{path}", p.display()));
        Command::new("sh")
            .arg(SCRIPT)
            .env_clear()
            .env("HOME", home)
            .env("PATH", path)
            .env("ISLAND_RELEASES_URL", self.server.base_url())
            .env("ISLAND_RELEASE_KEY", &self.public)
            .env("ISLAND_NONINTERACTIVE", "1")
            .output()
            .unwrap()
    }
}

fn said(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn a_good_install_places_the_binary_creates_the_config_and_adds_the_path_and_a_reinstall_keeps_the_config() {
    let release = Release::new();
    let home = tempfile::tempdir().unwrap();
    let out = release.install(home.path(), None);
    assert!(out.status.success(), "{}", said(&out));
    let bin = home.path().join(".island/bin/island");
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("island {}", island::VERSION));
    let config = home.path().join(".island/config.toml");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), island::config::template::TEMPLATE);
    let profile = std::fs::read_to_string(home.path().join(".profile")).unwrap();
    assert!(profile.contains(&format!("export PATH=\"{}:$PATH\"", bin.parent().unwrap().display())), "{profile}");
    assert!(said(&out).contains("island service install"), "{}", said(&out));

    std::fs::write(&config, "# mine\n[host]\nregion = \"eu-west\"\n").unwrap();
    let again = release.install(home.path(), None);
    assert!(again.status.success() && said(&again).contains("Kept your configuration"), "{}", said(&again));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n[host]\nregion = \"eu-west\"\n");
    let profile_again = std::fs::read_to_string(home.path().join(".profile")).unwrap();
    assert_eq!(profile_again, profile, "the PATH line is added once");
}

#[test]
fn a_checksum_or_signature_that_does_not_match_installs_nothing() {
    let release = Release::new();
    let (other_key, _) = key_pair(release.dir.path(), "other");
    // The release tooling itself refuses a key that is not the published one.
    let refused = release.asset(&other_key, &release.dir.path().join("other-dist"));
    assert!(!refused.status.success() && said(&refused).contains("not the one published"), "{}", said(&refused));
    let cases = [
        (Some("0".repeat(64)), release.dir.path().join("release.key"), "the checksum of"),
        (None, other_key, "the signature of"),
    ];
    for (checksum, key, message) in cases {
        release.publish(&key, checksum.as_deref());
        let home = tempfile::tempdir().unwrap();
        let out = release.install(home.path(), None);
        assert!(!out.status.success(), "{}", said(&out));
        let text = said(&out);
        assert!(text.contains(message) && text.contains("nothing was installed"), "{text}");
        assert!(!home.path().join(".island").exists(), "nothing installed: {text}");
    }
}

#[test]
fn a_platform_without_a_binary_is_named() {
    let release = Release::new();
    let fake = tempfile::tempdir().unwrap();
    let uname = fake.path().join("uname");
    std::fs::write(&uname, "#!/bin/sh\ncase \"$1\" in -s) echo SunOS ;; *) echo sparc64 ;; esac\n").unwrap();
    std::fs::set_permissions(&uname, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = release.install(home.path(), Some(fake.path()));
    assert!(!out.status.success());
    assert!(said(&out).contains("no Island binary for this system (SunOS sparc64)"), "{}", said(&out));
    assert!(!home.path().join(".island").exists());
}

#[test]
fn the_script_carries_the_published_release_key() {
    let script = std::fs::read_to_string(SCRIPT).unwrap();
    let key = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/installers/release-key.pem")).unwrap();
    assert!(script.contains(&format!("RELEASE_KEY='{}'", key.trim())), "install.sh and release-key.pem differ");
    let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let ps1 = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/installers/install.ps1")).unwrap();
    assert!(ps1.contains(&format!("$ReleaseKey = \"{body}\"")), "install.ps1 and release-key.pem differ");
}
