//! The `island` command: see `island --help`. All the work is in the library's `cli` module.

fn main() -> std::process::ExitCode {
    island::cli::main()
}
