//! `coordinator.nats_url`: one NATS server or several, comma-separated as NATS clients write
//! them ("tls://a.example:4222,tls://b.example:4222"), each with its own scheme. A user and
//! password written into one entry apply to every server. Every entry is checked while the
//! config is parsed, and a bad one is named.

use std::fmt;
use std::str::FromStr;

use super::types::{REDACTED, Secret};

/// The coordinator's NATS servers: `nats://` or `tls://`, with optional `user:password@`.
///
/// Displays and serializes with the password replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsUrl {
    /// The entries, trimmed, joined by commas.
    raw: String,
}

/// One entry split as `scheme://[userinfo@]rest`.
fn parts(entry: &str) -> (&str, Option<&str>, &str) {
    let (scheme, after) = entry.split_once("://").unwrap_or(("", entry));
    let authority_end = after.find(['/', '?']).unwrap_or(after.len());
    match after[..authority_end].rfind('@') {
        Some(at) => (scheme, Some(&after[..at]), &after[at + 1..]),
        None => (scheme, None, after),
    }
}

/// One entry with its password replaced by `***`.
fn redact(entry: &str) -> String {
    match parts(entry) {
        (scheme, Some(info), rest) => match info.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:{REDACTED}@{rest}"),
            None => format!("{scheme}://{info}@{rest}"),
        },
        _ => entry.to_string(),
    }
}

/// An entry's `host[:port]` as written, without scheme, credentials or path.
fn host_port(entry: &str) -> &str {
    let rest = parts(entry).2;
    rest.split(['/', '?']).next().unwrap_or_default()
}

/// `host[:port]` split; a colon inside an IPv6 literal's brackets ("[::1]:4222") is not a
/// port's.
fn split_port(host_port: &str) -> (&str, Option<&str>) {
    match host_port.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || (h.starts_with('[') && h.ends_with(']')) => (h, Some(p)),
        _ => (host_port, None),
    }
}

impl NatsUrl {
    /// The text with credentials, for the config file only.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    fn entries(&self) -> impl Iterator<Item = &str> {
        self.raw.split(',')
    }

    /// Each server without credentials, as the client connects to it.
    pub fn servers(&self) -> Vec<String> {
        self.entries()
            .map(|e| {
                let (scheme, _, rest) = parts(e);
                format!("{scheme}://{rest}")
            })
            .collect()
    }

    /// Each server's host and port as written ("sail.archipelag.io:4222"): for sentences.
    pub fn host_ports(&self) -> Vec<&str> {
        self.entries().map(host_port).collect()
    }

    /// Each server's host alone ("sail.archipelag.io", "[::1]").
    pub fn hosts(&self) -> Vec<&str> {
        self.entries().map(|e| split_port(host_port(e)).0).collect()
    }

    /// The user and password, from the entry that carries them.
    pub fn credentials(&self) -> Option<(&str, Secret)> {
        self.entries().find_map(|e| {
            let (user, pass) = parts(e).1?.split_once(':')?;
            Some((user, Secret::new(pass)))
        })
    }

    /// The servers without any credentials, comma-separated.
    pub fn without_credentials(&self) -> String {
        self.servers().join(",")
    }

    /// This list, with `old`'s user and password when it carries none itself: a UI shows
    /// the list without its password, and saving it must not drop the password.
    pub fn keeping_credentials_of(self, old: &NatsUrl) -> NatsUrl {
        let info = old.entries().find_map(|e| parts(e).1);
        match info {
            Some(info) if self.entries().all(|e| parts(e).1.is_none()) => {
                let mut entries: Vec<String> = self.entries().map(str::to_string).collect();
                let (scheme, _, rest) = parts(&entries[0]);
                entries[0] = format!("{scheme}://{info}@{rest}");
                NatsUrl { raw: entries.join(",") }
            }
            _ => self,
        }
    }

    /// The list with the password replaced by `***`, for logs and UIs.
    pub fn redacted(&self) -> String {
        self.entries().map(redact).collect::<Vec<_>>().join(",")
    }
}

/// Checks one entry; the message names it.
fn check_entry(entry: &str) -> Result<(), String> {
    let shown = redact(entry);
    let (scheme, _, rest) = parts(entry);
    if !matches!(scheme, "nats" | "tls") || !entry.contains("://") {
        return Err(format!(
            "expected a nats:// or tls:// URL such as \"tls://sail.archipelag.io:4222\", found \"{shown}\""
        ));
    }
    let (name, port) = split_port(host_port(entry));
    if name.is_empty() {
        return Err(format!("the URL \"{shown}\" names no host"));
    }
    if let Some(p) = port.filter(|p| p.parse::<u16>().is_err()) {
        return Err(format!("the port \"{p}\" of \"{shown}\" is not a number from 0 to 65535"));
    }
    // What passes here must also be a server address to the client (no spaces in the name…).
    let plain = format!("{scheme}://{rest}");
    plain.parse::<async_nats::ServerAddr>().map_err(|e| format!("\"{shown}\" is not a usable server address: {e}"))?;
    Ok(())
}

impl FromStr for NatsUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let entries: Vec<&str> = s.split(',').map(str::trim).collect();
        let many = entries.len() > 1;
        for (i, entry) in entries.iter().enumerate() {
            let which =
                || if many { format!("server {} of {} in the list: ", i + 1, entries.len()) } else { String::new() };
            if entry.is_empty() {
                return Err(format!("{}is empty (a stray comma?)", which()));
            }
            check_entry(entry).map_err(|e| format!("{}{e}", which()))?;
        }
        let url = NatsUrl { raw: entries.join(",") };
        let mut infos: Vec<&str> = url.entries().filter_map(|e| parts(e).1).collect();
        infos.dedup();
        if infos.len() > 1 {
            return Err("the servers in the list carry different user names or passwords; write them once, \
                        in one entry (they apply to every server), or keep them in the OS keyring"
                .into());
        }
        Ok(url)
    }
}

impl fmt::Display for NatsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for NatsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NatsUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_redacts_credentials() {
        let u: NatsUrl = "tls://island:s3cr@t@sail.archipelag.io:4222".parse().unwrap();
        let (user, pass) = u.credentials().unwrap();
        assert_eq!((user, pass.expose()), ("island", "s3cr@t"));
        assert_eq!(u.without_credentials(), "tls://sail.archipelag.io:4222");
        assert_eq!(u.to_string(), "tls://island:***@sail.archipelag.io:4222");
        assert!(!format!("{u:?}").contains("s3cr"));
    }

    #[test]
    fn hosts_and_ports_as_written() {
        let u: NatsUrl = "tls://u:p@a.example:4222,nats://[::1]:4223,nats://[::1],nats://b.example".parse().unwrap();
        assert_eq!(u.host_ports(), ["a.example:4222", "[::1]:4223", "[::1]", "b.example"]);
        assert_eq!(u.hosts(), ["a.example", "[::1]", "[::1]", "b.example"]);
    }

    #[test]
    fn rejects_other_schemes_and_missing_hosts() {
        assert!("http://x:4222".parse::<NatsUrl>().unwrap_err().contains("nats:// or tls://"));
        assert!("nats://".parse::<NatsUrl>().unwrap_err().contains("no host"));
        assert!("nats://h:99999".parse::<NatsUrl>().unwrap_err().contains("port"));
        assert!("nats://ho st:4222".parse::<NatsUrl>().unwrap_err().contains("\"nats://ho st:4222\""));
        assert!("nats://127.0.0.1:4222".parse::<NatsUrl>().is_ok());
    }

    #[test]
    fn a_list_keeps_each_scheme_and_shares_one_set_of_credentials() {
        let u: NatsUrl = " tls://island:pw@a.example:4222 , nats://10.0.0.2:4222,tls://b.example ".parse().unwrap();
        assert_eq!(u.servers(), ["tls://a.example:4222", "nats://10.0.0.2:4222", "tls://b.example"]);
        assert_eq!(
            u.credentials().map(|(user, p)| (user.to_string(), p.expose().to_string())),
            Some(("island".into(), "pw".into()))
        );
        assert_eq!(u.to_string(), "tls://island:***@a.example:4222,nats://10.0.0.2:4222,tls://b.example");
        let same: NatsUrl = "nats://u:p@a:1,nats://u:p@b:2".parse().unwrap();
        assert_eq!(same.without_credentials(), "nats://a:1,nats://b:2");
    }

    #[test]
    fn a_bad_entry_in_a_list_is_named() {
        let e = "tls://a.example:4222,htp://b.example:4222".parse::<NatsUrl>().unwrap_err();
        assert!(e.starts_with("server 2 of 2 in the list: ") && e.contains("\"htp://b.example:4222\""), "{e}");
        let e = "tls://a.example:4222,,tls://c.example".parse::<NatsUrl>().unwrap_err();
        assert!(e.contains("server 2 of 3") && e.contains("empty"), "{e}");
        let e = "nats://a:1,nats://b:xx".parse::<NatsUrl>().unwrap_err();
        assert!(e.contains("server 2 of 2") && e.contains("\"xx\""), "{e}");
        let e = "nats://u:p@a:1,nats://u:q@b:2".parse::<NatsUrl>().unwrap_err();
        assert!(e.contains("different user names or passwords") && !e.contains(":q"), "{e}");
    }

    #[test]
    fn a_list_saved_from_the_window_keeps_the_stored_password() {
        let old: NatsUrl = "tls://island:pw@a.example:4222".parse().unwrap();
        let new: NatsUrl = "tls://a.example:4222,tls://b.example:4222".parse().unwrap();
        let kept = new.keeping_credentials_of(&old);
        assert_eq!(kept.expose(), "tls://island:pw@a.example:4222,tls://b.example:4222");
    }
}
