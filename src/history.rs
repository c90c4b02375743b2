//! The local job history (`<home>/history.jsonl`): one line per finished job, append-only,
//! kept for [`KEEP_DAYS`] days. It gives the owner today's counters and the credits asked for
//! (the asking price of each succeeded job).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::appender::Appender;
use crate::fsutil::{unix_ms, write_replace};
use crate::jobs::RuntimeKind;
use crate::jobs::{JobId, JobState};
use crate::state::StateError;

/// Days of history kept.
pub const KEEP_DAYS: i64 = 30;

/// One finished job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The job.
    pub job_id: JobId,
    /// Its Cargo, when named.
    pub workload_id: Option<String>,
    /// Its runtime.
    pub runtime: RuntimeKind,
    /// How it ended.
    pub state: JobState,
    /// When it started and ended (Unix ms).
    pub started_at_ms: i64,
    /// When it ended (Unix ms).
    pub ended_at_ms: i64,
    /// The asking price in force for it (credits), when one was set.
    pub price: Option<String>,
}

/// What the owner ran and the credits asked for it: the owner's asking price of each
/// succeeded job (the coordinator does not report what it paid).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Earnings {
    /// Jobs that ended today (local time), by outcome.
    pub today: Counters,
    /// Credits for today's succeeded jobs, as a decimal string.
    pub credits_today: String,
    /// Credits over the kept history.
    pub credits_total: String,
}

/// Job totals by outcome (since the agent started, or for a day of the history).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Jobs that ran to a clean exit.
    pub succeeded: u64,
    /// Jobs that failed.
    pub failed: u64,
    /// Jobs that were cancelled.
    pub cancelled: u64,
}

/// A Cargo that ran to a clean exit here, and when it last did: the coordinator's "warm"
/// workloads (heartbeat `cache`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentWorkload {
    /// The Cargo id.
    pub workload_id: String,
    /// When its last succeeded job ended (Unix ms).
    pub last_run_ms: i64,
}

/// Owns the history file.
#[derive(Debug)]
pub struct History {
    /// Written by its own thread: the agent task never waits on the disk.
    file: Appender,
    entries: Vec<HistoryEntry>,
    /// The ids in `entries`, so a redelivered job is known at once.
    ids: std::collections::HashSet<JobId>,
}

/// Appends unreadable history lines to `<path>.bad` (earlier ones stay) and says so.
fn set_aside(path: &Path, bad: &[&str]) -> Result<String, StateError> {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".bad");
    let aside = PathBuf::from(aside);
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&aside).map_err(io_err(&aside))?;
    f.write_all(format!("{}\n", bad.join("\n")).as_bytes()).and_then(|()| f.sync_all()).map_err(io_err(&aside))?;
    Ok(format!(
        "{}: {} unreadable line(s) left out of the job history and kept in {}",
        path.display(),
        bad.len(),
        aside.display()
    ))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io { path: path.to_path_buf(), source }
}

impl History {
    /// Opens the history, dropping entries older than [`KEEP_DAYS`]. Lines that do not parse
    /// are not lost: they are appended to `<file>.bad` beside it, and the returned warning
    /// says how many and where.
    ///
    /// # Errors
    /// [`StateError::Io`].
    pub fn open(path: &Path) -> Result<(History, Option<String>), StateError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_err(path)(e)),
        };
        let cutoff = unix_ms() - KEEP_DAYS * 86_400_000;
        let (mut entries, mut bad) = (Vec::new(), Vec::new());
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<HistoryEntry>(line) {
                Ok(e) if e.ended_at_ms >= cutoff => entries.push(e),
                Ok(_) => {}
                Err(_) => bad.push(line),
            }
        }
        let warning = if bad.is_empty() { None } else { Some(set_aside(path, &bad)?) };
        let mut kept = Vec::new();
        for e in &entries {
            serde_json::to_writer(&mut kept, e).expect("serializes");
            kept.push(b'\n');
        }
        write_replace(path, &kept).map_err(io_err(path))?;
        let file = Appender::open(path).map_err(io_err(path))?;
        let ids = entries.iter().map(|e| e.job_id.clone()).collect();
        Ok((History { file, entries, ids }, warning))
    }

    /// Adds a finished job. A failed write is logged by the appender; the entry still counts
    /// until the Island restarts.
    pub fn append(&mut self, entry: HistoryEntry) {
        let mut line = serde_json::to_vec(&entry).expect("serializes");
        line.push(b'\n');
        self.file.append(line);
        self.ids.insert(entry.job_id.clone());
        self.entries.push(entry);
    }

    /// Whether a job with this id ended here (within the kept days).
    pub fn ran(&self, id: &JobId) -> bool {
        self.ids.contains(id)
    }

    /// The kept entries, oldest first.
    pub fn entries(&self) -> &[HistoryEntry] {
        &self.entries
    }

    /// Each Cargo with a succeeded job in the history and when it last ran, most recent first.
    pub fn recent_workloads(&self) -> Vec<RecentWorkload> {
        let mut last: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
        for e in self.entries.iter().filter(|e| e.state == JobState::Succeeded) {
            if let Some(w) = e.workload_id.as_deref() {
                let t = last.entry(w).or_insert(e.ended_at_ms);
                *t = (*t).max(e.ended_at_ms);
            }
        }
        let mut v: Vec<RecentWorkload> =
            last.into_iter().map(|(w, t)| RecentWorkload { workload_id: w.to_string(), last_run_ms: t }).collect();
        v.sort_by(|a, b| b.last_run_ms.cmp(&a.last_run_ms).then_with(|| a.workload_id.cmp(&b.workload_id)));
        v
    }

    /// Today's counters and the credits asked, with "today" starting at `day_start_ms`.
    pub fn earnings(&self, day_start_ms: i64) -> Earnings {
        let mut today = Counters::default();
        let (mut credits_today, mut credits_total) = (Decimal::ZERO, Decimal::ZERO);
        for e in &self.entries {
            let is_today = e.ended_at_ms >= day_start_ms;
            let price = e.price.as_deref().and_then(|p| Decimal::from_str(p).ok()).unwrap_or_default();
            if e.state == JobState::Succeeded {
                credits_total += price;
                if is_today {
                    credits_today += price;
                }
            }
            if is_today {
                match e.state {
                    JobState::Succeeded => today.succeeded += 1,
                    JobState::Failed => today.failed += 1,
                    JobState::Cancelled => today.cancelled += 1,
                    JobState::Started | JobState::Streaming => {}
                }
            }
        }
        Earnings { today, credits_today: credits_today.to_string(), credits_total: credits_total.to_string() }
    }
}

/// The start of today, local time, in Unix ms.
pub fn local_day_start_ms() -> i64 {
    let now = chrono::Local::now();
    let midnight = now.date_naive().and_hms_opt(0, 0, 0).expect("midnight exists");
    midnight.and_local_timezone(chrono::Local).earliest().map_or(now.timestamp_millis(), |t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, state: JobState, ended: i64, price: Option<&str>) -> HistoryEntry {
        HistoryEntry {
            job_id: id.into(),
            workload_id: None,
            runtime: RuntimeKind::Wasm,
            state,
            started_at_ms: ended - 10,
            ended_at_ms: ended,
            price: price.map(str::to_string),
        }
    }

    #[test]
    fn earnings_count_today_and_add_prices_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let now = unix_ms();
        let mut h = History::open(&path).unwrap().0;
        h.append(entry("old", JobState::Succeeded, now - 2 * 86_400_000, Some("0.10")));
        h.append(entry("a", JobState::Succeeded, now, Some("0.10")));
        h.append(entry("b", JobState::Succeeded, now, Some("0.20")));
        h.append(entry("c", JobState::Failed, now, Some("5")));
        h.append(entry("d", JobState::Cancelled, now, None));
        drop(h);
        let h = History::open(&path).unwrap().0;
        let e = h.earnings(now - 86_400_000);
        assert_eq!(e.today, Counters { succeeded: 2, failed: 1, cancelled: 1 });
        assert_eq!(e.credits_today, "0.30", "decimals, not floats");
        assert_eq!(e.credits_total, "0.40");
        assert!(local_day_start_ms() <= now);
    }

    #[test]
    fn entries_past_the_kept_days_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let mut h = History::open(&path).unwrap().0;
        h.append(entry("ancient", JobState::Succeeded, unix_ms() - (KEEP_DAYS + 1) * 86_400_000, None));
        drop(h);
        assert!(History::open(&path).unwrap().0.entries().is_empty());
    }

    #[test]
    fn unreadable_lines_are_kept_aside_with_a_warning_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let mut h = History::open(&path).unwrap().0;
        h.append(entry("a", JobState::Succeeded, unix_ms(), None));
        drop(h);
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"torn{\n{\"job_id\":1}\n").unwrap();
        let (h, warning) = History::open(&path).unwrap();
        assert_eq!(h.entries().len(), 1);
        let warning = warning.expect("a warning");
        assert!(warning.contains("2 unreadable line(s)") && warning.contains("history.jsonl.bad"), "{warning}");
        let aside = std::fs::read_to_string(dir.path().join("history.jsonl.bad")).unwrap();
        assert_eq!(aside, "torn{\n{\"job_id\":1}\n");
        drop(h);
        let (_, again) = History::open(&path).unwrap();
        assert!(again.is_none(), "the good file is clean now");
    }
}
