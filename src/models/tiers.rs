//! The starter models an Island preloads by its hardware (the guide's "Hardware tier" and
//! "Preload:" lines), as data in one place: CPU-only machines get small and mid-size GGUF
//! chat models by memory, GPUs add what fits their VRAM. `[preload].models` replaces the
//! choice; `[preload].enabled = false` turns it off (both decided by the caller).

/// One starter model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Starter {
    /// The name in the log and the window.
    pub name: &'static str,
    /// Where it comes from.
    pub uri: &'static str,
    /// `GGUF`, …
    pub format: &'static str,
    /// The size of the file the URI resolves to, about (shown as an estimate until it is
    /// on disk).
    pub approx_mb: u64,
    /// Memory the machine needs for it.
    pub min_ram_mb: u64,
    /// GPU memory it needs (0: runs on the CPU).
    pub min_vram_mb: u64,
}

/// Every starter, smallest first. A machine gets each one its memory and GPU memory allow.
pub const STARTERS: &[Starter] = &[
    Starter {
        name: "Qwen3.5-0.8B",
        uri: "hf://Qwen/Qwen3.5-0.8B-GGUF",
        format: "GGUF",
        approx_mb: 600,
        min_ram_mb: 4096,
        min_vram_mb: 0,
    },
    Starter {
        name: "Mistral 7B Instruct",
        uri: "hf://TheBloke/Mistral-7B-Instruct-v0.2-GGUF",
        format: "GGUF",
        approx_mb: 4400,
        min_ram_mb: 16384,
        min_vram_mb: 0,
    },
    Starter {
        name: "Mistral 7B Instruct (GPU)",
        uri: "hf://TheBloke/Mistral-7B-Instruct-v0.2-GGUF",
        format: "GGUF",
        approx_mb: 4400,
        min_ram_mb: 8192,
        min_vram_mb: 6144,
    },
    Starter {
        name: "Qwen3.5-27B",
        uri: "hf://unsloth/Qwen3.5-27B-GGUF",
        format: "GGUF",
        approx_mb: 16_500,
        min_ram_mb: 24_576,
        min_vram_mb: 18_000,
    },
];

/// The starters for a machine with `ram_mb` of memory and `vram_mb` on its largest shared
/// GPU; one URI is chosen once (the first entry that fits names it).
pub fn select(ram_mb: u64, vram_mb: u64) -> Vec<&'static Starter> {
    let mut chosen: Vec<&'static Starter> = Vec::new();
    for s in STARTERS.iter().filter(|s| ram_mb >= s.min_ram_mb && vram_mb >= s.min_vram_mb) {
        if !chosen.iter().any(|c| c.uri == s.uri) {
            chosen.push(s);
        }
    }
    chosen
}

/// The largest model file a machine can run, MB: three quarters of its memory or of its
/// largest shared GPU's memory, whichever is larger. A GGUF model is loaded whole into one
/// of the two, and the rest is room for the context, the runtime and the system.
pub fn max_model_mb(ram_mb: u64, vram_mb: u64) -> u64 {
    ram_mb.max(vram_mb) / 4 * 3
}

/// `600 MB`, `4.4 GB`: a size as the guide's log lines write it.
pub fn size_label(mb: u64) -> String {
    if mb >= 1000 { format!("{:.1} GB", mb as f64 / 1000.0) } else { format!("{mb} MB") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ram: u64, vram: u64) -> Vec<&'static str> {
        select(ram, vram).iter().map(|s| s.name).collect()
    }

    #[test]
    fn each_kind_of_machine_gets_what_fits_it() {
        assert!(names(2048, 0).is_empty(), "too little memory for any model");
        assert_eq!(names(8192, 0), ["Qwen3.5-0.8B"], "a small CPU-only machine");
        assert_eq!(names(32768, 0), ["Qwen3.5-0.8B", "Mistral 7B Instruct"], "the guide's 32 GB machine");
        assert_eq!(names(8192, 8192), ["Qwen3.5-0.8B", "Mistral 7B Instruct (GPU)"], "a small GPU");
        assert_eq!(
            names(65536, 24576),
            ["Qwen3.5-0.8B", "Mistral 7B Instruct", "Qwen3.5-27B"],
            "a large GPU; Mistral once"
        );
    }

    #[test]
    fn every_starter_fits_the_machines_that_select_it() {
        for s in STARTERS {
            assert!(s.approx_mb <= max_model_mb(s.min_ram_mb, s.min_vram_mb), "{}", s.name);
        }
        assert_eq!(max_model_mb(32768, 0), 24576);
        assert_eq!(max_model_mb(8192, 24576), 18432, "the GPU holds more");
    }

    #[test]
    fn every_starter_is_a_valid_uri_and_sizes_read_as_the_guide_writes_them() {
        for s in STARTERS {
            assert!(s.uri.parse::<crate::config::ModelUri>().is_ok(), "{}", s.uri);
        }
        assert_eq!((size_label(600), size_label(4400)), ("600 MB".to_string(), "4.4 GB".to_string()));
    }
}
