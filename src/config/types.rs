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
string_serde!(super::NatsUrl, HttpUrl, super::model_uri::ModelUri);

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
