//! Value types of the configuration that validate themselves while they are parsed, so a
//! bad value is reported with the exact line and column of the file.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A secret string (a password, a token). `Debug`, `Display` and `Serialize` never show it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What every sink prints in place of a secret.
pub const REDACTED: &str = "***";

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// The coordinator's NATS URL: `nats://` or `tls://`, with optional `user:password@`.
///
/// Displays and serializes with the password replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsUrl {
    raw: String,
}

impl NatsUrl {
    /// The URL with credentials, for the connection only.
    pub fn expose(&self) -> &str {
        &self.raw
    }
    /// `nats` or `tls`.
    pub fn scheme(&self) -> &str {
        self.raw.split("://").next().unwrap_or_default()
    }
    /// Splits `scheme://[userinfo@]rest` into its parts.
    fn parts(&self) -> (&str, Option<&str>, &str) {
        let (scheme, after) = self.raw.split_once("://").unwrap_or(("", &self.raw));
        let authority_end = after.find('/').unwrap_or(after.len());
        match after[..authority_end].rfind('@') {
            Some(at) => (scheme, Some(&after[..at]), &after[at + 1..]),
            None => (scheme, None, after),
        }
    }
    /// The user and password from the URL, when both are present.
    pub fn credentials(&self) -> Option<(&str, Secret)> {
        let (_, userinfo, _) = self.parts();
        let (user, pass) = userinfo?.split_once(':')?;
        Some((user, Secret::new(pass)))
    }
    /// The URL without any credentials, as the client connects to it.
    pub fn without_credentials(&self) -> String {
        let (scheme, _, rest) = self.parts();
        format!("{scheme}://{rest}")
    }
    /// This URL, with `old`'s user and password when it carries none itself: a UI shows
    /// the URL without its password, and saving it must not drop the password.
    pub fn keeping_credentials_of(self, old: &NatsUrl) -> NatsUrl {
        match (self.parts().1, old.parts().1) {
            (None, Some(info)) => {
                let (scheme, _, rest) = self.parts();
                NatsUrl { raw: format!("{scheme}://{info}@{rest}") }
            }
            _ => self,
        }
    }
    /// The URL with the password replaced by `***`, for logs and UIs.
    pub fn redacted(&self) -> String {
        let (scheme, userinfo, rest) = self.parts();
        match userinfo {
            Some(info) => match info.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:{REDACTED}@{rest}"),
                None => format!("{scheme}://{info}@{rest}"),
            },
            None => self.raw.clone(),
        }
    }
}

impl FromStr for NatsUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let url = NatsUrl { raw: s.trim().to_string() };
        if !matches!(url.scheme(), "nats" | "tls") || !url.raw.contains("://") {
            return Err(format!(
                "expected a nats:// or tls:// URL such as \"tls://sail.archipelag.io:4222\", found \"{}\"",
                url.redacted()
            ));
        }
        let (_, _, rest) = url.parts();
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        let (name, port) = match host.rsplit_once(':') {
            Some((n, p)) if !n.ends_with(']') || host.starts_with('[') => (n, Some(p)),
            _ => (host, None),
        };
        if name.is_empty() {
            return Err(format!("the URL \"{}\" names no host", url.redacted()));
        }
        if let Some(p) = port.filter(|p| p.parse::<u16>().is_err()) {
            return Err(format!("the port \"{p}\" of \"{}\" is not a number from 0 to 65535", url.redacted()));
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

/// An `http://` or `https://` URL.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HttpUrl(String);

impl HttpUrl {
    /// The URL text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HttpUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
        match rest {
            Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(HttpUrl(s.to_string())),
            _ => Err(format!("expected an http:// or https:// URL, found \"{s}\"")),
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An asking price in credits per job: an exact, non-negative decimal, kept as written.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Price(Decimal);

impl Price {
    /// The amount.
    pub fn amount(&self) -> Decimal {
        self.0
    }
}

impl FromStr for Price {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let d = Decimal::from_str_exact(s.trim())
            .map_err(|_| format!("expected a price in credits such as \"1.0\", found \"{s}\""))?;
        if d.is_sign_negative() && !d.is_zero() {
            return Err(format!("a price cannot be negative, found \"{s}\""));
        }
        Ok(Price(d))
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Price;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a price in credits as a string, such as \"1.0\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Price, E> {
                s.parse().map_err(E::custom)
            }
            // TOML numbers are accepted too (`1.5`); their shortest decimal form is exact
            // for anything a person types.
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Price, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Price, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Price, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Price {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Implements `Deserialize` through `FromStr` (errors carry the value's position) and
/// `Serialize` through `Display`.
macro_rules! string_serde {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?.parse().map_err(de::Error::custom)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
string_serde!(NatsUrl, HttpUrl, super::model_uri::ModelUri);

/// A whole number within `MIN..=MAX`, checked while parsing.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize)]
#[serde(transparent)]
pub struct Bounded<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Bounded<MIN, MAX> {
    /// Checks `v` against the bounds.
    pub fn new(v: u64) -> Result<Self, String> {
        if (MIN..=MAX).contains(&v) {
            Ok(Bounded(v))
        } else {
            Err(format!("expected a whole number from {MIN} to {MAX}, found {v}"))
        }
    }
    /// The value.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MIN: u64, const MAX: u64>;
        impl<const MIN: u64, const MAX: u64> Visitor<'_> for V<MIN, MAX> {
            type Value = Bounded<MIN, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a whole number from {MIN} to {MAX}")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Bounded::new(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                let v = u64::try_from(v)
                    .map_err(|_| E::custom(format!("expected a whole number from {MIN} to {MAX}, found {v}")))?;
                self.visit_u64(v)
            }
        }
        d.deserialize_any(V::<MIN, MAX>)
    }
}

/// How tightly a container Cargo is sandboxed (protocol §6.4).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxTier {
    /// 256 MiB, 60 s, no network, 1 CPU, no GPU.
    Restricted,
    /// 1 GiB, 300 s, no network, 2 CPUs.
    Standard,
    /// 8 GiB, 600 s, network, 4 CPUs.
    Elevated,
}

impl std::str::FromStr for SandboxTier {
    type Err = String;

    /// The tier a job or the config names: `restricted`, `standard` or `elevated`.
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "restricted" => Ok(SandboxTier::Restricted),
            "standard" => Ok(SandboxTier::Standard),
            "elevated" => Ok(SandboxTier::Elevated),
            other => Err(format!("unknown sandbox tier \"{other}\" (expected restricted, standard or elevated)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_url_splits_and_redacts_credentials() {
        let u: NatsUrl = "tls://island:s3cr@t@sail.archipelag.io:4222".parse().unwrap();
        let (user, pass) = u.credentials().unwrap();
        assert_eq!((user, pass.expose()), ("island", "s3cr@t"));
        assert_eq!(u.without_credentials(), "tls://sail.archipelag.io:4222");
        assert_eq!(u.to_string(), "tls://island:***@sail.archipelag.io:4222");
        assert!(!format!("{u:?}").contains("s3cr"));
    }

    #[test]
    fn nats_url_rejects_other_schemes_and_missing_hosts() {
        assert!("http://x:4222".parse::<NatsUrl>().unwrap_err().contains("nats:// or tls://"));
        assert!("nats://".parse::<NatsUrl>().unwrap_err().contains("no host"));
        assert!("nats://h:99999".parse::<NatsUrl>().unwrap_err().contains("port"));
        assert!("nats://127.0.0.1:4222".parse::<NatsUrl>().is_ok());
    }

    #[test]
    fn prices_are_exact_non_negative_decimals() {
        assert_eq!("0.80".parse::<Price>().unwrap().to_string(), "0.80");
        assert!("-1".parse::<Price>().unwrap_err().contains("negative"));
        assert!("abc".parse::<Price>().unwrap_err().contains("expected a price"));
        assert!("1e3".parse::<Price>().is_err());
    }

    #[test]
    fn bounded_rejects_out_of_range() {
        assert!(Bounded::<16, 100>::new(0).unwrap_err().contains("from 16 to 100"));
        assert_eq!(Bounded::<16, 100>::new(16).unwrap().get(), 16);
    }
}
