//! The Cargo I/O protocol (protocol §9): what a Cargo prints on stdout, one JSON object a
//! line, tagged by `type`.

use serde::{Deserialize, Serialize};

/// One line a Cargo printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CargoEvent {
    /// A status message; `ready` means output starts flowing.
    Status {
        /// The message.
        message: String,
    },
    /// A piece of output text.
    Token {
        /// The text.
        content: String,
    },
    /// Progress of a long step.
    Progress {
        /// Steps done.
        step: u32,
        /// Steps in all.
        total: u32,
    },
    /// An image (base64).
    Image {
        /// Standard base64 of the encoded image.
        data: String,
        /// `png`, `jpeg`, …
        format: String,
        /// Pixels.
        width: u32,
        /// Pixels.
        height: u32,
    },
    /// The Cargo says it is done.
    Done {
        /// Token counts, when the Cargo reports them.
        #[serde(default)]
        usage: Option<Usage>,
    },
    /// The Cargo reports an error (the exit code still decides the outcome).
    Error {
        /// The message.
        message: String,
    },
}

/// Token counts a Cargo may report with `done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: Option<u32>,
    /// Generated tokens.
    #[serde(default)]
    pub completion_tokens: Option<u32>,
}

/// Parses one stdout line. Empty lines, non-JSON and unknown types are `None` (the caller
/// logs them at debug level): Cargos may print other text.
pub fn parse_line(line: &str) -> Option<CargoEvent> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    serde_json::from_str(line).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_documented_line() {
        assert_eq!(
            parse_line(r#"{"type":"token","content":"Hel"}"#),
            Some(CargoEvent::Token { content: "Hel".into() })
        );
        assert_eq!(
            parse_line(r#"{"type":"done","usage":{"prompt_tokens":10,"completion_tokens":2}}"#),
            Some(CargoEvent::Done { usage: Some(Usage { prompt_tokens: Some(10), completion_tokens: Some(2) }) })
        );
        assert_eq!(parse_line(r#"{"type":"done"}"#), Some(CargoEvent::Done { usage: None }));
        assert!(matches!(parse_line(r#"{"type":"progress","step":1,"total":3}"#), Some(CargoEvent::Progress { .. })));
        assert_eq!(parse_line("plain text"), None);
        assert_eq!(parse_line(r#"{"type":"mystery"}"#), None);
        assert_eq!(parse_line("   "), None);
    }
}
