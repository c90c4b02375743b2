//! Saving log lines to a file for the owner (the desktop's Export): the lines the live view
//! shows, chosen by the same filter, as JSON lines in a new file that never overwrites one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::api::LogLine;

/// Which lines: at or above `level`, containing `text`, about `job` (empty: any).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LogFilter {
    /// `error`, `warn`, `info`, `debug` or `trace` (empty: every level).
    pub level: String,
    /// Text the line must contain (case as typed).
    pub text: String,
    /// The job id the line must be about.
    pub job: String,
}

fn rank(level: &str) -> u8 {
    match level {
        "error" => 0,
        "warn" => 1,
        "info" => 2,
        "debug" => 3,
        _ => 4,
    }
}

impl LogFilter {
    /// Whether `line` passes.
    pub fn matches(&self, line: &LogLine) -> bool {
        (self.level.is_empty() || rank(&line.level) <= rank(&self.level))
            && (self.text.is_empty() || line.message.contains(&self.text))
            && (self.job.is_empty() || line.job_id.as_deref() == Some(self.job.as_str()))
    }
}

/// What an export wrote, so the owner is told how many lines the file holds (the core keeps
/// the last `logs.ring_lines`; the log file has every line).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Exported {
    /// The new file.
    pub path: PathBuf,
    /// Lines written.
    pub lines: usize,
    /// Lines the core had to choose from (before the filter).
    pub kept: usize,
}

/// Writes the lines `filter` passes to a new `island-log-<time>.jsonl` in `dir` (created
/// when missing).
///
/// # Errors
/// When the directory or the file cannot be written.
pub fn export(lines: &[LogLine], filter: &LogFilter, dir: &Path) -> std::io::Result<Exported> {
    std::fs::create_dir_all(dir)?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let mut n = 0;
    let (path, file) = loop {
        let name = if n == 0 { format!("island-log-{stamp}.jsonl") } else { format!("island-log-{stamp}-{n}.jsonl") };
        let path = dir.join(name);
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => break (path, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e),
        }
    };
    let mut out = std::io::BufWriter::new(file);
    let mut written = 0;
    for line in lines.iter().filter(|l| filter.matches(l)) {
        serde_json::to_writer(&mut out, line)?;
        out.write_all(b"\n")?;
        written += 1;
    }
    out.flush()?;
    Ok(Exported { path, lines: written, kept: lines.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(level: &str, message: &str, job: Option<&str>) -> LogLine {
        LogLine {
            ts_ms: 1,
            level: level.into(),
            target: "t".into(),
            message: message.into(),
            job_id: job.map(Into::into),
        }
    }

    #[test]
    fn exports_the_filtered_lines_to_a_new_file_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let lines =
            [line("info", "job started", Some("j1")), line("debug", "detail", Some("j1")), line("warn", "other", None)];
        let filter = LogFilter { level: "info".into(), job: "j1".into(), ..Default::default() };
        let first = export(&lines, &filter, &dir.path().join("Downloads")).unwrap();
        assert_eq!((first.lines, first.kept), (1, 3));
        let first = first.path;
        let text = std::fs::read_to_string(&first).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("\"job started\""));
        let second = export(&lines, &LogFilter::default(), &dir.path().join("Downloads")).unwrap().path;
        assert_ne!(first, second, "an export never overwrites an earlier one");
        assert_eq!(std::fs::read_to_string(&second).unwrap().lines().count(), 3);
    }
}
