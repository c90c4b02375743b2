//! A test double for NVIDIA's NVML library, for machines without an NVIDIA GPU: builds
//! `fake_nvml.c` into a `libnvidia-ml.so.1` that tests put on `LD_LIBRARY_PATH` of the
//! Island process they start. Island's real NVML code then detects, samples and shares
//! those cards; nothing in Island itself knows about the double.

use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = include_str!("fake_nvml.c");

/// The UUID of the first fake card (an RTX 4090 with 24 GB).
pub const FIRST_UUID: &str = "GPU-00000000-fake-4090-0000-000000000000";
/// The UUID of the second fake card (an RTX A4000 with 16 GB).
pub const SECOND_UUID: &str = "GPU-11111111-fake-a400-0000-000000000001";

/// Compiles the double into `dir` with the system C compiler (`cc`, or `$CC`) and returns
/// the directory to put on `LD_LIBRARY_PATH`. Set `FAKE_NVML_GPUS` (0 to 4, default 2)
/// in the Island process's environment to choose how many cards it reports.
///
/// # Errors
/// When there is no C compiler or it fails; the message names the compiler.
pub fn build(dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let src = dir.join("fake_nvml.c");
    std::fs::write(&src, SOURCE)?;
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(dir.join("libnvidia-ml.so.1"))
        .arg(&src)
        .output()
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot run the C compiler `{cc}`: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(std::io::Error::other(format!("`{cc}` failed to build the NVML double: {err}")));
    }
    Ok(dir.to_path_buf())
}
