//! What the tray process and the window's process say to each other (see `window`): one
//! JSON message per line, the window's calls on its standard output, the answers, the
//! core's events and "show yourself" on its standard input. Pipes rather than a socket: no
//! name another program could connect to, the same on every OS, and the end of either
//! process closes them, so neither outlives the other.

use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// From the window to the tray process.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Up {
    /// A command the page invoked, with its arguments as the page gave them.
    Call { id: u64, command: String, args: Value },
}

/// From the tray process to the window.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Down {
    /// The answer to call `id`: its value, or the `{code, message}` the page gets.
    Reply { id: u64, result: Result<Value, Value> },
    /// One of the core's events for the page (`island://…`).
    Event { name: String, payload: Value },
    /// The owner asked for the window again: bring it to the front.
    Show,
}

/// Writes one message as one line and flushes it.
pub fn send<T: Serialize>(out: &mut impl Write, message: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(message)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

/// The messages read from `input` until it ends, each handed to `each`; a line that is not
/// a message (something a library printed) goes to `stray`.
pub fn receive<T: for<'de> Deserialize<'de>>(input: impl BufRead, mut each: impl FnMut(T), stray: impl Fn(&str)) {
    for line in input.lines() {
        let Ok(line) = line else { return };
        match serde_json::from_str(&line) {
            Ok(message) => each(message),
            Err(_) if line.trim().is_empty() => {}
            Err(_) => stray(&line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_round_trip_one_per_line_and_stray_lines_are_set_aside() {
        let mut wire = Vec::new();
        let sent = [
            Down::Reply { id: 7, result: Ok(json!({"hosting": "paused"})) },
            Down::Reply { id: 8, result: Err(json!({"code": "config", "message": "no\nway"})) },
            Down::Event { name: "island://logs".into(), payload: json!([{"message": "a\nb"}]) },
            Down::Show,
        ];
        for m in &sent {
            send(&mut wire, m).unwrap();
        }
        wire.extend_from_slice(b"Gtk-WARNING: something\n\n");
        send(&mut wire, &Down::Show).unwrap();
        assert_eq!(wire.iter().filter(|b| **b == b'\n').count(), 7, "one line each, newlines in text escaped");
        let (mut got, strays) = (Vec::new(), std::cell::RefCell::new(Vec::new()));
        receive(&wire[..], |m: Down| got.push(m), |l| strays.borrow_mut().push(l.to_string()));
        assert_eq!(got.len(), 5);
        assert_eq!(got[..4], sent);
        assert_eq!(strays.into_inner(), ["Gtk-WARNING: something"]);
    }

    #[test]
    fn a_call_reads_as_the_window_writes_it() {
        let line = r#"{"kind":"call","id":1,"command":"pause","args":{"now":true}}"#;
        let call: Up = serde_json::from_str(line).unwrap();
        assert_eq!(call, Up::Call { id: 1, command: "pause".into(), args: json!({"now": true}) });
    }
}
