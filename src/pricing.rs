//! Asking prices: what the heartbeat advertises (protocol §8), from `[pricing]`.

use std::collections::BTreeMap;

use crate::config::PricingConfig;

/// The key the default price travels under.
pub const DEFAULT_KEY: &str = "_default";

/// Slug → price in credits (decimal strings exactly as configured), plus `_default` for
/// the default price; `None` when nothing is priced, so the field is left out.
pub fn asking_prices(cfg: &PricingConfig) -> Option<BTreeMap<String, String>> {
    let mut out: BTreeMap<String, String> = cfg.workloads.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
    if let Some(d) = cfg.default_price {
        out.insert(DEFAULT_KEY.to_string(), d.to_string());
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_keep_their_exact_text_and_default_key() {
        let mut cfg = PricingConfig::default();
        assert_eq!(asking_prices(&cfg), None);
        cfg.default_price = Some("1.0".parse().unwrap());
        cfg.workloads.insert("gguf-qwen3.5-4b".into(), "0.80".parse().unwrap());
        let prices = asking_prices(&cfg).unwrap();
        assert_eq!(prices["_default"], "1.0");
        assert_eq!(prices["gguf-qwen3.5-4b"], "0.80");
    }
}
