//! The owner's protections, decided from plain inputs: a thermal guard for shared GPUs, a
//! pause on battery power, and hosting hours per weekday. The agent task feeds these
//! decisions with each metrics sample; every automatic pause carries its reason for the
//! status and the tray.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{Datelike, NaiveDateTime};
use serde::{Deserialize, Serialize};

pub use crate::config::host_controls::{Day, HostControlsConfig, Hours};

/// Whether the Island takes jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostingState {
    /// Jobs are taken.
    Hosting,
    /// No new jobs; running ones finish, then paused.
    Draining,
    /// No jobs are taken.
    Paused,
}

impl fmt::Display for HostingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostingState::Hosting => "hosting",
            HostingState::Draining => "draining",
            HostingState::Paused => "paused",
        })
    }
}

/// Why hosting pauses by schedule at `now` (local time), if it does.
pub fn schedule_reason(schedule: &BTreeMap<Day, Vec<Hours>>, now: NaiveDateTime) -> Option<String> {
    if schedule.is_empty() {
        return None;
    }
    let (today, t) = (Day::of(now.weekday()), now.time());
    let yesterday = Day::of(now.weekday().pred());
    let on = schedule.get(&today).is_some_and(|hs| hs.iter().any(|h| h.covers_same_day(t)))
        || schedule.get(&yesterday).is_some_and(|hs| hs.iter().any(|h| h.covers_next_day(t)));
    (!on).then(|| "outside hosting hours".to_string())
}

/// Why hosting pauses for power, if it does.
pub fn battery_reason(on_battery: Option<bool>, pause_on_battery: bool) -> Option<String> {
    (pause_on_battery && on_battery == Some(true)).then(|| "on battery".to_string())
}

/// Remembers which shared GPUs are too hot, with hysteresis.
#[derive(Debug, Default)]
pub struct ThermalGuard {
    hot: BTreeSet<u32>,
}

impl ThermalGuard {
    /// Updates from `(gpu index, temperature)` of the shared GPUs that are monitored;
    /// returns why GPU jobs are held, if they are. A monitored GPU without a reading holds
    /// GPU jobs too: the guard fails safe rather than let a GPU of unknown temperature work.
    pub fn update(&mut self, temps: &[(u32, Option<u32>)], limit: u32, hysteresis: u32) -> Option<String> {
        for (index, temp) in temps {
            match temp {
                Some(t) if *t >= limit => {
                    self.hot.insert(*index);
                }
                Some(t) if *t + hysteresis <= limit => {
                    self.hot.remove(index);
                }
                _ => {}
            }
        }
        self.hot.retain(|i| temps.iter().any(|(j, _)| j == i));
        let reading = |i: &u32| temps.iter().find(|(j, _)| j == i).and_then(|(_, t)| *t);
        let hot: Vec<String> =
            self.hot.iter().filter_map(|i| reading(i).map(|t| format!("GPU {i} at {t} °C"))).collect();
        let unknown: Vec<String> =
            temps.iter().filter(|(_, t)| t.is_none()).map(|(i, _)| format!("GPU {i} temperature unknown")).collect();
        let all = [hot, unknown].concat();
        (!all.is_empty()).then(|| format!("{} (limit {limit} °C)", all.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    fn at(day: u32, hm: &str) -> NaiveDateTime {
        // 2026-11-30 is a Monday.
        let monday = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        (monday + chrono::Days::new(u64::from(day) - 1)).and_time(NaiveTime::parse_from_str(hm, "%H:%M").unwrap())
    }

    #[test]
    fn the_schedule_follows_hours_per_day_including_overnight() {
        let mut s: BTreeMap<Day, Vec<Hours>> = BTreeMap::new();
        assert_eq!(schedule_reason(&s, at(1, "03:00")), None, "no schedule: always");
        s.insert(Day::Mon, vec!["09:00-17:00".parse().unwrap(), "22:00-06:00".parse().unwrap()]);
        s.insert(Day::Tue, vec!["00:00-24:00".parse().unwrap()]);
        assert_eq!(schedule_reason(&s, at(1, "09:00")), None);
        assert_eq!(schedule_reason(&s, at(1, "16:59")), None);
        assert_eq!(schedule_reason(&s, at(1, "17:00")).as_deref(), Some("outside hosting hours"));
        assert_eq!(schedule_reason(&s, at(1, "23:30")), None, "overnight range, first part");
        assert_eq!(schedule_reason(&s, at(2, "05:59")), None, "overnight range, next morning");
        assert_eq!(schedule_reason(&s, at(2, "23:59")), None, "all day Tuesday");
        assert!(schedule_reason(&s, at(3, "05:00")).is_some(), "Wednesday is not listed");
        assert!("9-17".parse::<Hours>().is_err());
        assert_eq!("22:00-06:00".parse::<Hours>().unwrap().to_string(), "22:00-06:00");
    }

    #[test]
    fn battery_pauses_only_when_asked_and_known() {
        assert_eq!(battery_reason(Some(true), true).as_deref(), Some("on battery"));
        assert_eq!(battery_reason(Some(true), false), None);
        assert_eq!(battery_reason(Some(false), true), None);
        assert_eq!(battery_reason(None, true), None);
    }

    #[test]
    fn the_thermal_guard_holds_until_the_gpu_cools_below_the_hysteresis() {
        let mut g = ThermalGuard::default();
        assert_eq!(g.update(&[(0, Some(80))], 85, 5), None);
        assert_eq!(g.update(&[(0, Some(86))], 85, 5).as_deref(), Some("GPU 0 at 86 °C (limit 85 °C)"));
        assert!(g.update(&[(0, Some(82))], 85, 5).is_some(), "still within the hysteresis");
        assert_eq!(
            g.update(&[(0, None)], 85, 5).as_deref(),
            Some("GPU 0 temperature unknown (limit 85 °C)"),
            "no reading keeps the hold"
        );
        assert_eq!(g.update(&[(0, Some(80))], 85, 5), None);
        assert!(g.update(&[(1, Some(90))], 85, 5).is_some());
        assert_eq!(g.update(&[], 85, 5), None, "a GPU no longer shared no longer holds");
    }

    #[test]
    fn a_monitored_gpu_without_a_reading_holds_gpu_jobs() {
        let mut g = ThermalGuard::default();
        assert_eq!(
            g.update(&[(0, Some(60)), (1, None)], 85, 5).as_deref(),
            Some("GPU 1 temperature unknown (limit 85 °C)")
        );
        assert_eq!(g.update(&[(0, Some(60)), (1, Some(61))], 85, 5), None);
    }
}
