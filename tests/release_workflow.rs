//! The release workflow (`.github/workflows/release.yml`) cannot run here, so it is checked
//! as far as it can be: it parses, every file or folder of this repository it names exists,
//! it builds every installer format and the five headless binaries under the names that
//! install.sh and install.ps1 download, and updater artifacts are made in the same step as
//! code signing (never signed again after it).

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn workflow() -> (String, Yaml) {
    let text = std::fs::read_to_string(Path::new(ROOT).join(".github/workflows/release.yml")).unwrap();
    let doc = YamlLoader::load_from_str(&text).expect("release.yml parses").remove(0);
    (text, doc)
}

/// Every string in the document.
fn strings(y: &Yaml, out: &mut Vec<String>) {
    match y {
        Yaml::String(s) => out.push(s.clone()),
        Yaml::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Yaml::Hash(h) => h.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out);
        }),
        _ => {}
    }
}

#[test]
fn every_path_the_release_workflow_names_exists() {
    let (_, doc) = workflow();
    let mut all = Vec::new();
    strings(&doc, &mut all);
    let roots = ["scripts/", "installers/", "src-tauri", "icons/", ".github/"];
    let mut named = Vec::new();
    for s in &all {
        for word in s.split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '=') {
            if roots.iter().any(|r| word.starts_with(r)) {
                named.push(word.trim_end_matches([';', ',', ')']).to_string());
            }
        }
    }
    // Files the workflow itself writes do not exist before it runs.
    named.retain(|p| p != "src-tauri/tauri.windows-signing.json");
    assert!(named.len() >= 5, "the workflow names its scripts and installers: {named:?}");
    for path in named {
        assert!(Path::new(ROOT).join(&path).exists(), "release.yml names {path}, which does not exist");
    }
}

#[test]
fn it_builds_every_format_and_the_five_headless_binaries_install_scripts_fetch() {
    let (text, doc) = workflow();
    let desktop = &doc["jobs"]["desktop"]["strategy"]["matrix"]["include"];
    let args: Vec<&str> = desktop.as_vec().unwrap().iter().map(|e| e["args"].as_str().unwrap()).collect();
    for bundle in ["deb", "rpm", "appimage", "msi", "nsis", "app", "dmg"] {
        assert!(args.iter().any(|a| a.split([' ', ',']).any(|w| w == bundle)), "{bundle} is built: {args:?}");
    }
    assert!(args.iter().any(|a| a.contains("universal-apple-darwin")), "macOS universal");
    let headless = &doc["jobs"]["headless"]["strategy"]["matrix"]["include"];
    let assets: Vec<&str> = headless.as_vec().unwrap().iter().map(|e| e["asset"].as_str().unwrap()).collect();
    let expected = [
        "island-linux-x86_64",
        "island-linux-aarch64",
        "island-darwin-x86_64",
        "island-darwin-aarch64",
        "island-windows-x86_64.exe",
    ];
    assert_eq!(assets, expected);
    // install.sh asks for island-<os>-<arch>, install.ps1 for the Windows name.
    let sh = std::fs::read_to_string(Path::new(ROOT).join("installers/install.sh")).unwrap();
    assert!(sh.contains("echo \"island-$os-$arch\"") && sh.contains("os=linux") && sh.contains("os=darwin"));
    assert!(sh.contains("arch=x86_64") && sh.contains("arch=aarch64"));
    let ps1 = std::fs::read_to_string(Path::new(ROOT).join("installers/install.ps1")).unwrap();
    assert!(ps1.contains("$Asset = \"island-windows-x86_64.exe\""));
    // Updater artifacts come out of tauri-action, after its code signing; no later step signs.
    let steps = doc["jobs"]["desktop"]["steps"].as_vec().unwrap();
    let action =
        steps.iter().position(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("tauri-apps/tauri-action")));
    let action = action.expect("tauri-action builds the installers");
    assert!(steps[action]["with"]["args"].as_str().unwrap().contains("createUpdaterArtifacts"));
    assert!(steps[action]["env"]["TAURI_SIGNING_PRIVATE_KEY"].as_str().is_some());
    for later in &steps[action + 1..] {
        let run = later["run"].as_str().unwrap_or_default();
        assert!(!run.contains("signtool") && !run.contains("codesign"), "nothing re-signs after the updater artifacts");
    }
    assert!(text.contains("scripts/release-asset"), "headless binaries get .sha256 and .sig");
}
