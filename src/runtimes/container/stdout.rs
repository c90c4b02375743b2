//! A container's stdout as it arrives in frames: bytes are kept until a whole line is in,
//! so a character split across two frames arrives whole, and each line is parsed as a Cargo
//! message (protocol §9). Past the output cap the job fails rather than Island reading on.

use crate::runtimes::{CargoEvent, Error, cargo_io};

/// Most stdout one container job may write.
pub const MAX_OUTPUT: u64 = 64 << 20;

/// The stdout of one container.
#[derive(Debug, Default)]
pub struct Stdout {
    pending: Vec<u8>,
    total: u64,
}

impl Stdout {
    /// Takes a frame; returns the messages of the lines it completed.
    ///
    /// # Errors
    /// [`Error::OutputLimit`] once the job wrote more than [`MAX_OUTPUT`].
    pub fn push(&mut self, frame: &[u8]) -> Result<Vec<CargoEvent>, Error> {
        self.total += frame.len() as u64;
        if self.total > MAX_OUTPUT {
            return Err(Error::OutputLimit(MAX_OUTPUT));
        }
        let mut events = Vec::new();
        let mut rest = frame;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            self.pending.extend_from_slice(&rest[..i]);
            rest = &rest[i + 1..];
            events.extend(Self::parse(&std::mem::take(&mut self.pending)));
        }
        self.pending.extend_from_slice(rest);
        Ok(events)
    }

    /// The last line, when the Cargo ended without a newline.
    pub fn finish(&mut self) -> Option<CargoEvent> {
        Self::parse(&std::mem::take(&mut self.pending))
    }

    fn parse(line: &[u8]) -> Option<CargoEvent> {
        let text = String::from_utf8_lossy(line);
        let event = cargo_io::parse_line(&text);
        if event.is_none() && !text.trim().is_empty() {
            tracing::debug!(line = %text.chars().take(200).collect::<String>(), "stdout line that is not a Cargo message");
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_across_frames_arrives_whole() {
        let line = "{\"type\":\"token\",\"content\":\"héllo €\"}\n".as_bytes();
        let cut = line.iter().position(|b| *b == 0xE2).unwrap() + 1; // inside the euro sign
        let mut out = Stdout::default();
        assert!(out.push(&line[..cut]).unwrap().is_empty());
        let events = out.push(&line[cut..]).unwrap();
        assert_eq!(events, [CargoEvent::Token { content: "héllo €".into() }]);
    }

    #[test]
    fn lines_split_and_join_across_frames_and_the_last_needs_no_newline() {
        let mut out = Stdout::default();
        let events = out.push(b"{\"type\":\"token\",\"content\":\"a\"}\nnot json\n{\"type\":\"tok").unwrap();
        assert_eq!(events, [CargoEvent::Token { content: "a".into() }]);
        assert!(out.push(b"en\",\"content\":\"b\"}").unwrap().is_empty());
        assert_eq!(out.finish(), Some(CargoEvent::Token { content: "b".into() }));
    }

    #[test]
    fn output_past_the_cap_is_an_error() {
        let mut out = Stdout::default();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..64 {
            out.push(&chunk).unwrap();
        }
        assert!(matches!(out.push(b"x"), Err(Error::OutputLimit(MAX_OUTPUT))));
    }
}
