//! The configuration template that `island config init`, `island --agent` and the desktop
//! app write when no file exists: the Island setup guide's template, less its placeholder
//! secret and example name (the password goes to the keyring, the name defaults to this
//! computer's), followed by commented documentation of the keys the guide does not show.

/// The template text.
pub const TEMPLATE: &str = r#"# Archipelag.io Island Configuration

[host]
# name = "my-machine"  # Friendly name for this Island (default: this computer's name)
region = "auto"        # Auto-detect region, or set manually (e.g. "eu-west")

[coordinator]
nats_url = "tls://sail.archipelag.io:4222"   # Credentials go to the OS keyring: the window's first screen, or `island credentials set`
api_url = "https://app.archipelag.io"   # For demand-driven preloading

[workload]
llm_chat_image = "ghcr.io/archipelag-io/llm-chat:latest"
gpu_devices = []       # e.g. ["0"] or ["0", "1"] for specific GPUs

[workload.resource_limits]
memory_mb = 4096       # Max memory per Cargo container
read_only_rootfs = true
tmpfs_size_mb = 256
network_disabled = true

[cache]
enable_preload = false
max_cached_images = 10

[model_cache]
max_cache_gb = 20          # Max disk for ML models (GGUF, ONNX, etc.)
# cache_dir = "/data/models"  # Optional: custom cache directory

[preload]
enabled = true             # Auto-preload models based on hardware
# models = ["hf://TheBloke/Mistral-7B-Instruct-v0.2-GGUF"]  # Override auto-selection

[pricing]
# default_price = "1.0"           # Default asking price for all Cargos (credits/job)
# [pricing.workloads]             # Per-Cargo overrides
# "gguf-mistral-7b" = "2.0"
# "gguf-qwen3.5-4b" = "0.80"

[signing]
enabled = true
require_signature = false

[registry]
enabled = true
require_digest = false

# ---------------------------------------------------------------------------
# More settings, shown with their defaults. Uncomment a line to change it.
#
# host_id = "..."             # top level only (move it above [host]): overrides the id in state.json
#
# [workload]
# sandbox_tier = "standard"   # for jobs that name none: restricted | standard | elevated
# job_timeout = "300s"        # longest a container Cargo without a tier may run
# [workload.resource_limits]
# cpu_percent = 200           # 100 = one CPU; unlimited when unset
#
# [model_cache]
# hf_token = "hf_..."         # or set HF_TOKEN; sent only to Hugging Face
# hf_endpoint = "https://huggingface.co"  # or set HF_ENDPOINT: a mirror
#
# [agent]
# shutdown_grace = "30s"      # on shutdown, time running jobs get to finish
# cancel_grace = "10s"        # after a cancel, time a job gets to stop
# max_concurrent_jobs = 2     # default: from CPU cores and memory
# metrics_interval = "5s"     # how often live machine figures refresh
#
# [host_controls]
# max_gpu_temp_c = 85         # no new GPU jobs while a shared GPU is this hot...
# temp_hysteresis_c = 5       # ...until it is this much cooler
# pause_on_battery = true     # laptops: pause hosting on battery power
# [host_controls.schedule]    # hosting hours; always when no day is listed
# mon = ["09:00-17:00"]       # mon ... sun; "22:00-06:00" runs past midnight
#
# [wasm]
# max_run_time = "60s"        # caps every sandbox tier's time limit
# local_dir = "/home/me/cargos"  # file:// module URLs allowed only under this directory
# max_cache_mb = 1024         # disk budget for downloaded and compiled modules
#
# [logs]
# file_max_mb = 10            # rotate logs/island.log at this size
# file_keep = 5               # rotated files kept
# ring_lines = 1000           # recent lines kept for the desktop log view
"#;
