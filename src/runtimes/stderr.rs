//! A Cargo's stderr on its way to the log. Stderr is the Cargo's own log, shown in the live
//! log view by job, so it must never cost the host more than a log should: each line is cut
//! at [`MAX_LINE`] bytes, at most [`MAX_BYTES`] are logged per job, and at most
//! [`RATE_PER_S`] lines a second (bursts of [`BURST`]) reach the log. What is left out is
//! counted and said in one line when the Cargo ends, never dropped silently. Once the byte
//! cap is reached, further writes only add to a counter.

use std::time::Instant;

/// Longest line logged; the rest of a longer line is counted, not kept.
pub const MAX_LINE: usize = 4096;
/// Most stderr bytes one job may log.
pub const MAX_BYTES: u64 = 1 << 20;
/// Lines a second that reach the log, on average.
pub const RATE_PER_S: f64 = 20.0;
/// Lines that may reach the log at once before the rate applies.
pub const BURST: f64 = 200.0;

/// One job's stderr.
pub struct StderrLog {
    job_id: String,
    /// The line being written, at most [`MAX_LINE`] bytes.
    line: Vec<u8>,
    /// Bytes of the current line past [`MAX_LINE`].
    line_cut: usize,
    logged_bytes: u64,
    /// Rate-limit tokens and when they were last topped up.
    tokens: f64,
    topped_up: Instant,
    dropped_lines: u64,
    dropped_bytes: u64,
    cut_lines: u64,
}

impl StderrLog {
    /// An empty log for `job_id`.
    pub fn new(job_id: String) -> StderrLog {
        StderrLog {
            job_id,
            line: Vec::new(),
            line_cut: 0,
            logged_bytes: 0,
            tokens: BURST,
            topped_up: Instant::now(),
            dropped_lines: 0,
            dropped_bytes: 0,
            cut_lines: 0,
        }
    }

    /// Takes what the Cargo wrote to stderr. Linear in `bytes`; constant past the cap.
    pub fn write(&mut self, mut bytes: &[u8]) {
        if self.logged_bytes >= MAX_BYTES {
            self.dropped_bytes += bytes.len() as u64;
            return;
        }
        while !bytes.is_empty() {
            let (part, rest, ends_line) = match bytes.iter().position(|b| *b == b'\n') {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            let room = MAX_LINE - self.line.len();
            let keep = part.len().min(room);
            self.line.extend_from_slice(&part[..keep]);
            self.line_cut += part.len() - keep;
            if ends_line {
                self.end_line();
            }
            bytes = rest;
        }
    }

    /// Logs the current line if the caps allow, else counts it.
    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        let cut = std::mem::take(&mut self.line_cut);
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.topped_up).as_secs_f64() * RATE_PER_S).min(BURST);
        self.topped_up = now;
        if self.tokens < 1.0 || self.logged_bytes >= MAX_BYTES {
            self.dropped_lines += 1;
            self.dropped_bytes += (line.len() + cut) as u64;
            return;
        }
        self.tokens -= 1.0;
        self.logged_bytes += line.len() as u64;
        let text = String::from_utf8_lossy(&line);
        if cut > 0 {
            self.cut_lines += 1;
            tracing::info!(target: "island::cargo", job_id = %self.job_id, "{} … ({cut} more bytes of this line not logged)", text.trim_end());
        } else {
            tracing::info!(target: "island::cargo", job_id = %self.job_id, "{}", text.trim_end());
        }
    }

    /// At the Cargo's end, however it ended: logs a last line without a newline, and says
    /// what was left out. Calling it again says nothing new.
    pub fn finish(&mut self) {
        if !self.line.is_empty() || self.line_cut > 0 {
            self.end_line();
        }
        if self.dropped_lines > 0 || self.dropped_bytes > 0 {
            tracing::warn!(
                target: "island::cargo",
                job_id = %self.job_id,
                "the Cargo's stderr: {} lines ({} bytes) not logged, over the limits of {} lines/s and {} MiB a job",
                self.dropped_lines,
                self.dropped_bytes,
                RATE_PER_S,
                MAX_BYTES >> 20
            );
            (self.dropped_lines, self.dropped_bytes) = (0, 0);
        }
    }

    /// Lines left out, bytes left out, lines cut: for tests.
    pub fn left_out(&self) -> (u64, u64, u64) {
        (self.dropped_lines, self.dropped_bytes, self.cut_lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_writes_are_joined_and_long_lines_cut() {
        let mut log = StderrLog::new("j".into());
        log.write(b"hel");
        log.write(b"lo\nwor");
        log.write(b"ld\n");
        assert_eq!(log.left_out(), (0, 0, 0));
        log.write(&vec![b'x'; MAX_LINE + 10]);
        log.write(b"\n");
        assert_eq!(log.left_out(), (0, 0, 1), "one line cut, none dropped");
    }

    #[test]
    fn a_flood_is_rate_limited_and_counted() {
        let mut log = StderrLog::new("j".into());
        for _ in 0..1000 {
            log.write(b"spam\n");
        }
        let (lines, bytes, _) = log.left_out();
        assert!((790..=800).contains(&lines), "about burst-many logged, the rest counted: {lines}");
        assert_eq!(bytes, lines * 4);
    }

    #[test]
    fn past_the_byte_cap_writes_only_count() {
        let mut log = StderrLog::new("j".into());
        log.logged_bytes = MAX_BYTES;
        let chunk = vec![b'y'; 64 * 1024];
        for _ in 0..100 {
            log.write(&chunk);
        }
        assert_eq!(log.left_out().1, 100 * 64 * 1024);
        assert!(log.line.is_empty(), "nothing kept");
    }
}
