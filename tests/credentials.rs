//! Coordinator credentials in the OS keyring (Secret Service here; CI runs the tests inside
//! `dbus-run-session` with an unlocked gnome-keyring), the private-file fallback where no
//! keyring exists, and the agent connecting with them.

mod common;

use common::*;
use island::config::Secret;
use island::credentials::{CredentialStore, Credentials, Stored};

#[test]
fn credentials_round_trip_through_the_keyring() {
    let home = temp_home();
    let store = CredentialStore::new(home.dir.path(), &format!("test-{}", uuid::Uuid::new_v4()));
    let creds = Credentials { user: "island".into(), password: Secret::new("kr-s3cret") };
    let stored = store.save(&creds).unwrap();
    match &stored {
        Stored::Keyring => {}
        Stored::File(_) if !island::devnet::services::in_ci() => island::devnet::services::say_skipped(
            "the keyring half of the credentials round trip: no Secret Service on the session bus \
             (gnome-keyring in a D-Bus session, which `./dev test` sets up); the file fallback was tested instead",
        ),
        Stored::File(f) => panic!("CI runs with a keyring, but credentials went to {}", f.display()),
    }
    assert_eq!(store.load().unwrap(), Some(creds));
    store.clear().unwrap();
    assert_eq!(store.load().unwrap(), None);
}

#[test]
fn without_a_keyring_credentials_go_to_a_private_file_and_the_agent_connects_with_them() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    use std::io::Write;
    let devnet_rt = tokio::runtime::Runtime::new().unwrap();
    let auth = Some(("island".to_string(), "file-pw-123".to_string()));
    let options = island::devnet::DoubleOptions {
        server: island::devnet::ServerOptions { auth, ..Default::default() },
        ..Default::default()
    };
    let double = devnet_rt.block_on(island::devnet::CoordinatorDouble::start(options)).unwrap();
    let home = temp_home();
    // No session bus: no keyring.
    let mut set = island(home.dir.path());
    set.args(["credentials", "set", "--user", "island"])
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = set.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"file-pw-123\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("No OS keyring is available here"), "{text}");
    let file = home.dir.path().join("credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }

    let mut cmd = island(home.dir.path());
    cmd.arg("--agent")
        .env("ISLAND_NATS_URL", double.nats_url())
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env("RUST_LOG", "debug");
    let mut agent = Running::spawn(cmd);
    agent.wait_line("Using the coordinator credentials stored for this Island");
    agent.wait_line("Registered Island ");
    agent.signal("TERM");
    let (code, out) = agent.wait_exit();
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("file-pw-123"), "the password never reaches the log");
}

#[test]
fn a_locked_keyring_is_a_clear_error_and_nothing_is_written_anywhere() {
    if !needs(&[Service::DbusRunSession, Service::GnomeKeyring]) {
        return;
    }
    use std::io::Write;
    let home = temp_home();
    // A session of its own with a Secret Service that was never unlocked: storing needs an
    // unlock prompt, which nobody can answer here (as when the owner dismisses it).
    let script = "gnome-keyring-daemon --start --components=secrets >/dev/null 2>&1; \
                  exec \"$0\" credentials set --user island";
    let mut set = std::process::Command::new("dbus-run-session");
    set.args(["--", "sh", "-c", script])
        .arg(island_bin())
        .env("HOME", home.dir.path())
        .env("ISLAND_HOME", home.dir.path())
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DISPLAY")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = set.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"never-stored-77\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("the OS keyring is locked") && text.contains("nothing was stored"), "{text}");
    assert!(!home.dir.path().join("credentials.json").exists(), "no plaintext fallback for a locked keyring");
    assert!(!text.contains("never-stored-77"));
}

#[test]
fn import_moves_the_password_out_of_nats_url_keeping_the_files_comments() {
    let home = temp_home();
    let config = home.dir.path().join("config.toml");
    let text = "# my settings\nhost_id = \"import-test\"\n\n[coordinator]\n\
                nats_url = \"tls://island:Imp-0rt-pw@127.0.0.1:9\" # from the installer\n";
    std::fs::write(&config, text).unwrap();
    let check = island(home.dir.path()).args(["config", "check"]).output().unwrap();
    let said = String::from_utf8_lossy(&check.stderr).to_string() + &String::from_utf8_lossy(&check.stdout);
    assert!(said.contains("`island credentials import` moves it there"), "the warning says how: {said}");
    assert!(!said.contains("Imp-0rt-pw"), "{said}");
    // No session bus here: the private file stands in for the keyring.
    let import = || {
        island(home.dir.path())
            .args(["credentials", "import"])
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
            .output()
            .unwrap()
    };
    let out = import();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(said.contains("stored in") && said.contains("coordinator.nats_url is now tls://127.0.0.1:9"), "{said}");
    let now = std::fs::read_to_string(&config).unwrap();
    assert!(now.starts_with("# my settings\n"), "{now}");
    assert!(now.contains("nats_url = \"tls://127.0.0.1:9\" # from the installer"), "{now}");
    assert!(!now.contains("Imp-0rt-pw"));
    let stored = std::fs::read_to_string(home.dir.path().join("credentials.json")).unwrap();
    assert!(stored.contains("Imp-0rt-pw") && stored.contains("island"), "the password moved, not lost");
    let again = import();
    assert!(String::from_utf8_lossy(&again.stdout).contains("carries no password: nothing to import"));
}
