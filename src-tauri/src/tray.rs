//! The tray: a view of the agent's status plus a command pad. The menu is built from the
//! status by a pure function (unit-tested); clicks map to commands. On Linux the menu is
//! the only way in, so it is complete: status line, pause/resume, open, quit.

use std::fmt;
use std::str::FromStr;

use island::api::{HeadlineKind, Status};

/// Tray menu item ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayItem {
    /// The disabled status line.
    Status,
    /// Pause hosting / Resume hosting, following the state.
    PauseResume,
    /// Open the window.
    Open,
    /// Shut down gracefully and exit.
    Quit,
}

impl TrayItem {
    /// The menu id.
    pub fn as_str(self) -> &'static str {
        match self {
            TrayItem::Status => "status",
            TrayItem::PauseResume => "pause-resume",
            TrayItem::Open => "open",
            TrayItem::Quit => "quit",
        }
    }
}

impl FromStr for TrayItem {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [TrayItem::Status, TrayItem::PauseResume, TrayItem::Open, TrayItem::Quit]
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| format!("unknown tray item {s}"))
    }
}

impl fmt::Display for TrayItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One menu line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its id.
    pub item: TrayItem,
    /// What it says.
    pub label: String,
    /// Clickable.
    pub enabled: bool,
}

/// Which tray icon to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icon {
    /// Connected and taking jobs.
    Hosting,
    /// Running jobs.
    Busy,
    /// Paused or draining.
    Paused,
    /// Not connected.
    Offline,
}

/// The status line: the core's headline, the same words as the window's badge.
pub fn status_line(s: &Status) -> String {
    s.headline.title.clone()
}

/// Pause or resume, by the owner's own pause: an automatic hold (battery, hours) is not
/// the owner's to resume, and the owner may still pause on top of it.
fn pause_resume_label(s: &Status) -> &'static str {
    if s.owner_paused { "Resume hosting" } else { "Pause hosting" }
}

/// The menu for a status.
pub fn menu(s: &Status) -> Vec<Entry> {
    vec![
        Entry { item: TrayItem::Status, label: status_line(s), enabled: false },
        Entry { item: TrayItem::PauseResume, label: pause_resume_label(s).to_string(), enabled: true },
        Entry { item: TrayItem::Open, label: "Open Island".to_string(), enabled: true },
        Entry { item: TrayItem::Quit, label: "Quit".to_string(), enabled: true },
    ]
}

/// Everything the tray shows for a status: re-rendered only when this changes, not on
/// every metrics tick.
pub fn view(s: &Status) -> (Vec<Entry>, Icon) {
    (menu(s), icon(s))
}

/// The icon for a status, by its headline.
pub fn icon(s: &Status) -> Icon {
    match s.headline.kind {
        HeadlineKind::Hosting if !s.running.is_empty() => Icon::Busy,
        HeadlineKind::Hosting => Icon::Hosting,
        HeadlineKind::Paused | HeadlineKind::Held | HeadlineKind::Draining => Icon::Paused,
        HeadlineKind::Offline | HeadlineKind::Setup | HeadlineKind::Connecting => Icon::Offline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use island::api::{HostingState, LinkProblem, LinkState, LinkStatus};

    fn status(link: LinkState, hosting: HostingState) -> Status {
        let mut s = Status::new("test".into(), Default::default());
        s.link = LinkStatus::new(link, None);
        s.hosting = hosting;
        s.refresh_headline();
        s
    }

    #[test]
    fn the_menu_follows_the_headline() {
        let hosting = status(LinkState::Connected, HostingState::Hosting);
        let m = menu(&hosting);
        let labels: Vec<&str> = m.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(labels, ["Hosting", "Pause hosting", "Open Island", "Quit"]);
        assert!(!m[0].enabled && m[1].enabled);
        assert_eq!(icon(&hosting), Icon::Hosting);

        let mut battery = status(LinkState::Connected, HostingState::Paused);
        battery.pause_reason = Some("on battery".into());
        battery.refresh_headline();
        let m = menu(&battery);
        assert_eq!(m[0].label, "Held: on battery");
        assert_eq!(m[1].label, "Pause hosting", "an automatic hold is not the owner's to resume");
        assert_eq!(icon(&battery), Icon::Paused);

        let mut paused = status(LinkState::Connected, HostingState::Paused);
        paused.owner_paused = true;
        paused.refresh_headline();
        assert_eq!(
            menu(&paused)[..2].iter().map(|e| e.label.as_str()).collect::<Vec<_>>(),
            ["Paused by you", "Resume hosting"]
        );

        let mut offline = status(LinkState::Disconnected, HostingState::Hosting);
        offline.link.problem = Some(LinkProblem::Lost);
        offline.refresh_headline();
        assert_eq!(status_line(&offline), "Offline: connection lost, reconnecting");
        assert_eq!(icon(&offline), Icon::Offline);
        assert_eq!(
            status_line(&status(LinkState::NoCredentials, HostingState::Hosting)),
            "Not connected: no credentials yet"
        );
    }

    #[test]
    fn live_figures_alone_do_not_change_the_tray() {
        let a = status(LinkState::Connected, HostingState::Hosting);
        let mut b = a.clone();
        b.hardware.usage.cpu_percent = 93.0;
        b.hardware.usage.memory_used_mb = 12345;
        assert_eq!(view(&a), view(&b));
        b.hosting = HostingState::Paused;
        b.refresh_headline();
        assert_ne!(view(&a), view(&b));
    }

    #[test]
    fn item_ids_round_trip() {
        for item in [TrayItem::Status, TrayItem::PauseResume, TrayItem::Open, TrayItem::Quit] {
            assert_eq!(item.as_str().parse::<TrayItem>().unwrap(), item);
        }
        assert!("other".parse::<TrayItem>().is_err());
    }
}

/// Tauri side: building the tray, refreshing it from a status, and handling its clicks.
mod native {
    use island::AgentHandle;
    use island::api::{Command, Status};
    use tauri::image::Image;
    use tauri::menu::{Menu, MenuEvent, MenuItem};
    use tauri::tray::TrayIconBuilder;
    use tauri::{AppHandle, Manager, Runtime};

    use super::{Icon, TrayItem, icon, menu, status_line};

    const TRAY_ID: &str = "island";

    fn image(icon: Icon) -> Image<'static> {
        let bytes: &'static [u8] = match icon {
            Icon::Hosting => include_bytes!("../../icons/tray-hosting.png"),
            Icon::Busy => include_bytes!("../../icons/tray-busy.png"),
            Icon::Paused => include_bytes!("../../icons/tray-paused.png"),
            Icon::Offline => include_bytes!("../../icons/tray-offline.png"),
        };
        Image::from_bytes(bytes).expect("the tray icons are PNG files")
    }

    fn build_menu<R: Runtime>(app: &AppHandle<R>, status: &Status) -> tauri::Result<Menu<R>> {
        let entries = menu(status);
        let items: Vec<MenuItem<R>> = entries
            .iter()
            .map(|e| MenuItem::with_id(app, e.item.as_str(), &e.label, e.enabled, None::<&str>))
            .collect::<tauri::Result<_>>()?;
        let refs: Vec<&dyn tauri::menu::IsMenuItem<R>> = items.iter().map(|i| i as _).collect();
        Menu::with_items(app, &refs)
    }

    /// Creates the tray icon with its menu.
    pub fn build<R: Runtime>(app: &AppHandle<R>, status: &Status) -> tauri::Result<()> {
        TrayIconBuilder::with_id(TRAY_ID)
            .icon(image(icon(status)))
            .tooltip(status_line(status))
            .menu(&build_menu(app, status)?)
            .on_menu_event(on_menu_event)
            .build(app)?;
        Ok(())
    }

    /// Re-renders the tray from a status.
    pub fn refresh<R: Runtime>(app: &AppHandle<R>, status: &Status) {
        let Some(tray) = app.tray_by_id(TRAY_ID) else { return };
        if let Ok(menu) = build_menu(app, status) {
            let _ = tray.set_menu(Some(menu));
        }
        let _ = tray.set_icon(Some(image(icon(status))));
        let _ = tray.set_tooltip(Some(status_line(status)));
    }

    fn on_menu_event<R: Runtime>(app: &AppHandle<R>, event: MenuEvent) {
        let Ok(item) = event.id().as_ref().parse::<TrayItem>() else { return };
        let agent = app.state::<AgentHandle>().inner().clone();
        match item {
            TrayItem::Status => {}
            TrayItem::Open => crate::show_window(app),
            TrayItem::PauseResume => {
                let cmd = if agent.status().borrow().owner_paused { Command::Resume } else { Command::Pause };
                tauri::async_runtime::spawn(async move {
                    if let Err(e) = agent.send(cmd).await {
                        tracing::warn!("tray: {e}");
                    }
                });
            }
            TrayItem::Quit => {
                let app = app.clone();
                tauri::async_runtime::spawn(async move {
                    agent.shutdown(crate::shutdown_grace(&agent)).await;
                    app.exit(0);
                });
            }
        }
    }
}

pub use native::{build, refresh};
