//! Generates the Tauri context (configuration, embedded UI assets, capabilities) and one
//! permission per app command: with them, the window may call only what its capability
//! file grants.

include!("src/command_names.rs");

fn main() {
    let manifest = tauri_build::AppManifest::new().commands(COMMANDS);
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest)).expect("the Tauri context builds");
}
