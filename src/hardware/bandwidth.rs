//! Memory bandwidth of common GPUs (GB/s), for the heartbeat's performance estimates
//! (protocol §3.3). Names are matched as the reference does: lowercased, vendor words
//! removed, an exact match first, then the longest name contained in the GPU's name.

/// (name without vendor words, GB/s)
const TABLE: &[(&str, f32)] = &[
    ("h200", 4800.0),
    ("h100 sxm", 3350.0),
    ("h100 nvl", 3900.0),
    ("h100 pcie", 2000.0),
    ("h100", 3350.0),
    ("gh200", 4000.0),
    ("a100-sxm4-80gb", 2039.0),
    ("a100 80gb", 1935.0),
    ("a100-pcie-40gb", 1555.0),
    ("a100", 1555.0),
    ("a800", 1935.0),
    ("h800", 3350.0),
    ("l40s", 864.0),
    ("l40", 864.0),
    ("l4", 300.0),
    ("a40", 696.0),
    ("a30", 933.0),
    ("a10g", 600.0),
    ("a10", 600.0),
    ("a16", 800.0),
    ("a2", 200.0),
    ("t4", 320.0),
    ("v100", 900.0),
    ("p100", 732.0),
    ("p40", 346.0),
    ("p4", 192.0),
    ("rtx 6000 ada generation", 960.0),
    ("rtx a6000", 768.0),
    ("rtx a5000", 768.0),
    ("rtx a4500", 640.0),
    ("rtx a4000", 448.0),
    ("rtx a2000", 288.0),
    ("quadro rtx 8000", 672.0),
    ("quadro rtx 6000", 672.0),
    ("rtx 5090", 1792.0),
    ("rtx 5080", 960.0),
    ("rtx 5070 ti", 896.0),
    ("rtx 5070", 672.0),
    ("rtx 5060 ti", 448.0),
    ("rtx 5060", 448.0),
    ("rtx 4090", 1008.0),
    ("rtx 4080 super", 736.0),
    ("rtx 4080", 717.0),
    ("rtx 4070 ti super", 672.0),
    ("rtx 4070 ti", 504.0),
    ("rtx 4070 super", 504.0),
    ("rtx 4070", 504.0),
    ("rtx 4060 ti", 288.0),
    ("rtx 4060", 272.0),
    ("rtx 3090 ti", 1008.0),
    ("rtx 3090", 936.0),
    ("rtx 3080 ti", 912.0),
    ("rtx 3080", 760.0),
    ("rtx 3070 ti", 608.0),
    ("rtx 3070", 448.0),
    ("rtx 3060 ti", 448.0),
    ("rtx 3060", 360.0),
    ("rtx 3050", 224.0),
    ("rtx 2080 ti", 616.0),
    ("rtx 2080 super", 496.0),
    ("rtx 2080", 448.0),
    ("rtx 2070 super", 448.0),
    ("rtx 2070", 448.0),
    ("rtx 2060 super", 448.0),
    ("rtx 2060", 336.0),
    ("titan rtx", 672.0),
    ("gtx 1660 ti", 288.0),
    ("gtx 1660 super", 336.0),
    ("gtx 1660", 192.0),
    ("gtx 1650", 128.0),
    ("gtx 1080 ti", 484.0),
    ("gtx 1080", 320.0),
    ("gtx 1070 ti", 256.0),
    ("gtx 1070", 256.0),
    ("gtx 1060", 192.0),
    ("instinct mi300x", 5300.0),
    ("instinct mi250x", 3277.0),
    ("instinct mi210", 1638.0),
    ("rx 7900 xtx", 960.0),
    ("rx 7900 xt", 800.0),
    ("rx 7800 xt", 624.0),
    ("rx 7700 xt", 432.0),
    ("rx 7600", 288.0),
    ("rx 6950 xt", 576.0),
    ("rx 6900 xt", 512.0),
    ("rx 6800 xt", 512.0),
    ("rx 6800", 512.0),
    ("rx 6700 xt", 384.0),
    ("arc a770", 560.0),
    ("arc a750", 512.0),
    ("apple m1 ultra", 800.0),
    ("apple m1 max", 400.0),
    ("apple m1 pro", 200.0),
    ("apple m1", 68.0),
    ("apple m2 ultra", 800.0),
    ("apple m2 max", 400.0),
    ("apple m2 pro", 200.0),
    ("apple m2", 100.0),
    ("apple m3 ultra", 819.0),
    ("apple m3 max", 400.0),
    ("apple m3 pro", 150.0),
    ("apple m3", 100.0),
    ("apple m4 max", 546.0),
    ("apple m4 pro", 273.0),
    ("apple m4", 120.0),
];

fn normalize(name: &str) -> String {
    let lower = name.to_lowercase();
    let words: Vec<&str> = lower
        .split_whitespace()
        .filter(|w| !matches!(*w, "nvidia" | "geforce" | "amd" | "radeon" | "intel" | "(tm)" | "(r)"))
        .collect();
    words.join(" ")
}

/// The GPU's memory bandwidth in GB/s: from the table, or 40 GB/s per GB of VRAM (200 when
/// the size is unknown), as the reference estimates.
pub fn gb_per_s(name: &str, vram_mb: u64) -> f32 {
    let n = normalize(name);
    let exact = TABLE.iter().find(|(k, _)| *k == n);
    let contained = || TABLE.iter().filter(|(k, _)| n.contains(k)).max_by_key(|(k, _)| k.len());
    match exact.or_else(contained) {
        Some((_, bw)) => *bw,
        None if vram_mb == 0 => 200.0,
        None => vram_mb as f32 / 1024.0 * 40.0,
    }
}

/// Estimated LLM tokens per second: `round(bw / 4.5 * 0.55 * f)`, where `f` is 1.0 with at
/// least 4.5 GB of VRAM, 0.5 below, 0.3 when the size is unknown.
pub fn llm_tokens_per_s(bandwidth: f32, vram_mb: u64) -> f32 {
    let f = if vram_mb == 0 {
        0.3
    } else if vram_mb >= 4608 {
        1.0
    } else {
        0.5
    };
    (bandwidth / 4.5 * 0.55 * f).round()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_exactly_then_by_the_longest_contained_name() {
        assert_eq!(gb_per_s("NVIDIA H200", 143771), 4800.0);
        assert_eq!(gb_per_s("NVIDIA GeForce RTX 4090", 24564), 1008.0);
        assert_eq!(gb_per_s("NVIDIA GeForce RTX 4070 Ti SUPER", 16376), 672.0);
        assert_eq!(gb_per_s("NVIDIA A100-SXM4-80GB", 81920), 2039.0);
        assert_eq!(gb_per_s("Apple M2 Max", 0), 400.0);
        assert_eq!(gb_per_s("Some Future GPU", 16384), 640.0, "40 GB/s per GB of VRAM");
        assert_eq!(gb_per_s("Mystery", 0), 200.0);
        assert_eq!(llm_tokens_per_s(1008.0, 24564), 123.0, "the reference's RTX 4090 example");
    }
}
