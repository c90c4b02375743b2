//! The Island desktop app. With command-line arguments (`--agent [--config PATH]`,
//! `service install`, `--version`…) it is the `island` command instead, with no window;
//! with `--window` it is the window's own process, which the app starts (Linux).
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    island::logs::install_panic_hook();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args == ["--window"] {
        return island_desktop::window_process::run();
    }
    if args.iter().any(|a| a == "--agent") || island::cli::is_cli_invocation(&args) {
        return island::cli::main();
    }
    island_desktop::run()
}
