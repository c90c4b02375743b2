// The commands the window may call, by name: `build.rs` includes this file to generate an
// `allow-<command>` permission for each (so a command is refused unless the capability file
// grants it), and the tests check it against the handler and the capability file.

/// Every command the app registers; the window's capability grants exactly these.
pub const COMMANDS: &[&str] = &[
    "get_status",
    "open_pairing_page",
    "recent_logs",
    "recent_figures",
    "export_logs",
    "pause",
    "resume",
    "cancel_job",
    "set_price",
    "set_gpus",
    "edit_settings",
    "docker_status",
    "set_credentials",
    "connect",
    "clear_credentials",
    "get_autostart",
    "set_autostart",
    "pull_model",
    "cancel_model_download",
    "evict_model",
    "pin_model",
    "window_painted",
];
