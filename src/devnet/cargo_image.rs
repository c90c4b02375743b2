//! The test Cargo image: `FROM scratch` with Debian's static busybox, its applets and a
//! shell Cargo that speaks protocol §9, imported into an engine with the `docker` CLI.
//! Built here because no registry can be reached; the container tests, the container
//! benchmark and the desktop's end-to-end test run it.

use std::io;
use std::process::Command;

use super::services::STATIC_BUSYBOX;

/// The Cargo: reads its input line, says ready, then does what the input's `mode` says.
pub const CARGO: &str = r#"read -r input
tok() { printf '{"type":"token","content":"%s"}\n' "$1"; }
printf '{"type":"status","message":"ready"}\n'
case "$input" in
  *'"tokens"'*) tok "héllo "; tok "wörld €"; printf '{"type":"done"}\n' ;;
  *'"fail"'*) echo "something broke" >&2; exit 3 ;;
  *'"oom"'*) x=$(head -c 300000000 /dev/zero | tr '\0' a); tok "${#x}" ;;
  *'"sleep"'*) sleep 120 ;;
  *'"version"'*) tok "version:${CARGO_VERSION:-1}" ;;
  *'"model"'*)
    tok "model:${ISLAND_MODEL_PATH:-none}"
    tok "bytes:$(wc -c < "$ISLAND_MODEL_PATH" | tr -d ' ')"
    if echo x >> "$ISLAND_MODEL_PATH" 2>/dev/null; then tok "model:writable"; else tok "model:read-only"; fi
    tok "ctx:${ISLAND_MODEL_CONTEXT_SIZE:-none} temp:${ISLAND_MODEL_TEMPERATURE:-none}" ;;
  *'"probe"'*)
    if nc -w 2 203.0.113.1 80 </dev/null 2>/dev/null; then tok "net:open"; else tok "net:none"; fi
    tok "ifaces:$(ls /sys/class/net | tr '\n' ' ')"
    if touch /written 2>/dev/null; then tok "root:writable"; else tok "root:read-only"; fi
    if echo x > /tmp/t 2>/dev/null; then tok "tmp:writable"; else tok "tmp:read-only"; fi
    tok "$(grep CapEff /proc/self/status | tr -d '\t ')"
    tok "$(grep 'Seccomp:' /proc/self/status | tr -d '\t ')" ;;
  *) tok "echo:$input" ;;
esac
"#;

/// The busybox applets the Cargo uses.
const APPLETS: &[&str] = &["sh", "cat", "sleep", "head", "tr", "nc", "touch", "grep", "printf", "ls", "echo", "wc"];

/// Imports the Cargo image into the engine at `docker_host` as `tag`, with `changes`
/// (Dockerfile instructions such as `ENV X=1`) on top.
///
/// # Errors
/// The busybox binary or the `docker` CLI is missing, or the import fails (with its output).
pub fn build(docker_host: &str, tag: &str, changes: &[&str]) -> io::Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("bin"))?;
    std::fs::create_dir_all(root.join("tmp"))?;
    std::fs::copy(STATIC_BUSYBOX, root.join("bin/busybox"))?;
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))?;
    }
    std::fs::write(root.join("cargo.sh"), CARGO)?;
    let tar = dir.path().join("rootfs.tar");
    let packed = Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").status()?;
    if !packed.success() {
        return Err(io::Error::other(format!("tar could not pack the image's files ({packed})")));
    }
    let mut import = Command::new("docker");
    import.env("DOCKER_HOST", docker_host).args(["import", "--change", r#"ENTRYPOINT ["/bin/sh", "/cargo.sh"]"#]);
    for c in changes {
        import.args(["--change", c]);
    }
    let out = import.arg(&tar).arg(tag).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("docker import {tag}: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(())
}
