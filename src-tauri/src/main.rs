//! The Island desktop app. `island-desktop --agent [--config PATH]` runs the headless agent
//! instead, with no window.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    island::logs::install_panic_hook();
    if std::env::args().any(|a| a == "--agent") {
        return island::cli::main();
    }
    island_desktop::run()
}
