//! NVIDIA GPUs through the real NVML code path, on a machine without one: the `island`
//! process loads the NVML test double (`island::devnet::fake_nvml`) from `LD_LIBRARY_PATH`.
//! Detection, live figures, the owner's GPU choice and what the coordinator is told.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use island::devnet::fake_nvml::{self, FIRST_UUID, SECOND_UUID};
use island::devnet::{CoordinatorDouble, Observed};
use serde_json::Value;
use std::time::Duration;

fn with_fake_nvml(cmd: &mut std::process::Command, dir: &std::path::Path, cards: u32) {
    let lib = fake_nvml::build(&dir.join("fake-nvml")).expect("a C compiler builds the NVML double");
    cmd.env("LD_LIBRARY_PATH", lib).env("FAKE_NVML_GPUS", cards.to_string());
}

fn hardware_json(home: &TempHome, config: &str, cards: u32) -> Value {
    std::fs::write(home.home.config_file(), config).unwrap();
    let mut cmd = island(home.dir.path());
    cmd.args(["hardware", "--json"]);
    with_fake_nvml(&mut cmd, home.dir.path(), cards);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn nvml_cards_are_detected_with_live_figures_and_the_owners_choice() {
    if !needs(&[Service::CCompiler]) {
        return;
    }
    let home = temp_home();
    let hw = hardware_json(&home, &format!("[workload]\ngpu_devices = [\"{SECOND_UUID}\"]\n"), 2);
    let gpus = hw["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 2, "{hw:#}");
    assert_eq!(gpus[0]["name"], "NVIDIA GeForce RTX 4090");
    assert_eq!(gpus[0]["vram_mb"], 24 * 1024);
    assert_eq!(gpus[0]["uuid"], FIRST_UUID);
    assert_eq!(gpus[0]["driver_version"], "550.54.14");
    assert_eq!(gpus[1]["vram_mb"], 16 * 1024);
    assert_eq!((gpus[0]["selected"].as_bool(), gpus[1]["selected"].as_bool()), (Some(false), Some(true)));
    let live = &gpus[1]["live"];
    for key in ["utilization_percent", "memory_used_mb", "temperature_c", "power_draw_w", "power_limit_w"] {
        assert!(live[key].is_number(), "{key} missing from {live}");
    }
    assert_eq!(live["power_limit_w"], 140.0);
}

#[test]
fn no_card_means_no_gpu_and_no_noise() {
    if !needs(&[Service::CCompiler]) {
        return;
    }
    let home = temp_home();
    let hw = hardware_json(&home, "", 0);
    assert_eq!(hw["gpus"].as_array().map(Vec::len), Some(0), "{hw:#}");
}

#[test]
fn only_the_shared_gpu_is_registered_and_heartbeated() {
    if !needs(&[Service::NatsServer, Service::CCompiler]) {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let double = rt.block_on(CoordinatorDouble::start(Default::default())).unwrap();
    let home = temp_home();
    let config = "[workload]\ngpu_devices = [\"1\"]\n[coordinator]\nheartbeat_interval = \"1s\"\n";
    std::fs::write(home.home.config_file(), config).unwrap();
    let mut cmd = island(home.dir.path());
    cmd.arg("--agent").env("ISLAND_NATS_URL", double.nats_url());
    with_fake_nvml(&mut cmd, home.dir.path(), 2);
    let mut agent = Running::spawn(cmd);
    agent.wait_line("Registered Island ");
    let wait = |pick: fn(&Observed) -> Option<Value>| rt.block_on(double.wait_for(Duration::from_secs(20), pick));
    let reg = wait(|o| if let Observed::Registered(v) = o { Some(v.clone()) } else { None }).expect("a registration");
    assert_eq!(reg["capabilities"]["gpu_model"], "NVIDIA RTX A4000", "{reg:#}");
    assert_eq!(reg["capabilities"]["gpu_vram_mb"], 16 * 1024);
    let hb = wait(|o| match o {
        Observed::Heartbeat(h) if h["gpus"].is_array() => Some(h.clone()),
        _ => None,
    })
    .expect("a heartbeat with GPU figures");
    let gpus = hb["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 1, "{hb:#}");
    assert_eq!((gpus[0]["index"].as_u64(), gpus[0]["memory_total_mb"].as_u64()), (Some(1), Some(16 * 1024)));
    assert!(agent.wait_line("Detected capabilities").contains("RTX A4000"));
}
