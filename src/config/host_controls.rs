//! `[host_controls]`: the owner's protections as configured (temperature limit, battery,
//! hosting hours per weekday). The decisions made from them are in the `host_controls` module.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

use super::types::Bounded;

/// `[host_controls]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostControlsConfig {
    /// Stop taking GPU jobs when a shared GPU reaches this temperature, °C.
    pub max_gpu_temp_c: Bounded<40, 120>,
    /// Take GPU jobs again once every shared GPU is this much below the limit, °C.
    pub temp_hysteresis_c: Bounded<1, 40>,
    /// Pause hosting while the machine runs on battery power.
    pub pause_on_battery: bool,
    /// Hosting hours per weekday (`mon` … `sun` → `["HH:MM-HH:MM", …]`); a day left out
    /// hosts nothing. Always hosting when empty.
    pub schedule: BTreeMap<Day, Vec<Hours>>,
}

impl Default for HostControlsConfig {
    fn default() -> Self {
        HostControlsConfig {
            max_gpu_temp_c: Bounded::new(85).expect("in range"),
            temp_hysteresis_c: Bounded::new(5).expect("in range"),
            pause_on_battery: true,
            schedule: BTreeMap::new(),
        }
    }
}

/// A weekday key of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    /// The key in `[host_controls.schedule]`: `mon` … `sun`.
    pub fn key(self) -> &'static str {
        match self {
            Day::Mon => "mon",
            Day::Tue => "tue",
            Day::Wed => "wed",
            Day::Thu => "thu",
            Day::Fri => "fri",
            Day::Sat => "sat",
            Day::Sun => "sun",
        }
    }

    pub(crate) fn of(w: Weekday) -> Day {
        match w {
            Weekday::Mon => Day::Mon,
            Weekday::Tue => Day::Tue,
            Weekday::Wed => Day::Wed,
            Weekday::Thu => Day::Thu,
            Weekday::Fri => Day::Fri,
            Weekday::Sat => Day::Sat,
            Weekday::Sun => Day::Sun,
        }
    }
}

/// `HH:MM-HH:MM`; an end at or before the start runs past midnight into the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    start: NaiveTime,
    /// `None` for `24:00`.
    end: Option<NaiveTime>,
}

impl FromStr for Hours {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected hours like \"09:00-17:00\", found \"{s}\"");
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
        let end = if b.trim() == "24:00" { None } else { Some(time(b)?) };
        Ok(Hours { start: time(a)?, end })
    }
}

impl fmt::Display for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self.end.map_or("24:00".to_string(), |e| e.format("%H:%M").to_string());
        write!(f, "{}-{end}", self.start.format("%H:%M"))
    }
}

impl<'de> Deserialize<'de> for Hours {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Hours {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Hours {
    pub(crate) fn overnight(&self) -> bool {
        self.end.is_some_and(|e| e <= self.start)
    }
    /// Covers `t` on its own day.
    pub(crate) fn covers_same_day(&self, t: NaiveTime) -> bool {
        t >= self.start && (self.overnight() || self.end.is_none_or(|e| t < e))
    }
    /// Covers `t` on the next day (the part after midnight).
    pub(crate) fn covers_next_day(&self, t: NaiveTime) -> bool {
        self.overnight() && self.end.is_some_and(|e| t < e)
    }
}
