//! Starting Island at login: an XDG autostart entry on Linux, a launch agent on macOS, the
//! `Run` key on Windows (through the auto-launch crate). The desktop app registers itself
//! to start hidden in the tray; `island autostart on` registers the headless agent.

use std::path::Path;

/// The name the entry is registered under.
pub const APP_NAME: &str = "Island";

/// Why the login entry could not be read or changed.
#[derive(Debug, thiserror::Error)]
#[error("cannot change starting at login: {0}")]
pub struct AutoStartError(#[source] auto_launch::Error);

/// The login entry for one program and its arguments.
pub struct AutoStart(auto_launch::AutoLaunch);

impl AutoStart {
    /// The entry that starts `exe` with `args`.
    ///
    /// # Errors
    /// When the platform's entry cannot be described (a path that is not UTF-8).
    pub fn new(exe: &Path, args: &[&str]) -> Result<AutoStart, AutoStartError> {
        let path = exe.to_string_lossy();
        let launch =
            auto_launch::AutoLaunchBuilder::new().set_app_name(APP_NAME).set_app_path(&path).set_args(args).build();
        launch.map(AutoStart).map_err(AutoStartError)
    }

    /// Turns starting at login on or off.
    ///
    /// # Errors
    /// When the entry cannot be written or removed.
    pub fn set(&self, on: bool) -> Result<(), AutoStartError> {
        if on { self.0.enable() } else { self.0.disable() }.map_err(AutoStartError)
    }

    /// Whether the entry is in place.
    ///
    /// # Errors
    /// When it cannot be read.
    pub fn is_enabled(&self) -> Result<bool, AutoStartError> {
        self.0.is_enabled().map_err(AutoStartError)
    }
}
