//! Generates the Tauri context (configuration, embedded UI assets, capabilities).

fn main() {
    tauri_build::build()
}
