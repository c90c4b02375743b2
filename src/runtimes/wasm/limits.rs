//! Time, memory and fuel for a WASM Cargo, by sandbox tier (protocol §6.4, adapted to WASM).

use std::time::Duration;

use crate::config::SandboxTier;
use crate::runtimes::Error;

/// What one run may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Linear memory, bytes.
    pub memory_bytes: usize,
    /// Fuel (roughly, WebAssembly instructions).
    pub fuel: u64,
}

/// The limits of a tier. `restricted` keeps the reference agent's WASM limits (60 s,
/// 256 MiB, 10^11 fuel); the others follow the container tiers' time and memory, memory
/// capped at WebAssembly's 4 GiB.
pub fn for_tier(tier: SandboxTier) -> Limits {
    const MIB: usize = 1 << 20;
    match tier {
        SandboxTier::Restricted => {
            Limits { timeout: Duration::from_secs(60), memory_bytes: 256 * MIB, fuel: 100_000_000_000 }
        }
        SandboxTier::Standard => {
            Limits { timeout: Duration::from_secs(300), memory_bytes: 1024 * MIB, fuel: 500_000_000_000 }
        }
        SandboxTier::Elevated => {
            Limits { timeout: Duration::from_secs(600), memory_bytes: 4096 * MIB, fuel: 1_000_000_000_000 }
        }
    }
}

/// The tier a job asks for, or the configured default, or `restricted`.
///
/// # Errors
/// [`Error::InvalidJob`] for a tier name this Island does not know.
pub fn tier_of(asked: Option<&str>, default: Option<SandboxTier>) -> Result<SandboxTier, Error> {
    match asked {
        None => Ok(default.unwrap_or(SandboxTier::Restricted)),
        Some(name) => name.parse().map_err(Error::InvalidJob),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_resolve_with_a_default_and_reject_unknown_names() {
        assert_eq!(tier_of(None, None).unwrap(), SandboxTier::Restricted);
        assert_eq!(tier_of(None, Some(SandboxTier::Standard)).unwrap(), SandboxTier::Standard);
        assert_eq!(tier_of(Some("elevated"), None).unwrap(), SandboxTier::Elevated);
        assert!(tier_of(Some("wide-open"), None).unwrap_err().to_string().contains("unknown sandbox tier"));
        assert_eq!(for_tier(SandboxTier::Restricted).timeout, Duration::from_secs(60));
    }
}
