//! The `island` command: see `island --help`. All the work is in the library's `cli` module.

fn main() -> std::process::ExitCode {
    island::logs::install_panic_hook();
    island::cli::main()
}
