// Settings: this Island's name and region, the coordinator (URL and credentials, kept in the
// OS keyring and never shown again), resource limits, starting at login and Docker.
import * as api from "../api.js";
import { subscribe } from "../store.js";
import { toast } from "../main.js";
import { card, field, h, typingIn } from "./util.js";

const saved = (what) => () => toast(`${what} saved`, "ok");
// The hint under a field, or why what is saved will not show: an environment variable wins.
const hint = (c, key, text) => (c.overridden[key] ? `Set by ${c.overridden[key]}: the environment wins over config.toml until it is unset.` : text);
const input = (id, value, attrs = {}) => h("input", { id, value: value ?? "", ...attrs });

function island(c) {
  const name = input("host-name", c.host_name, { placeholder: c.system_host_name });
  const region = input("region", c.region, { placeholder: "auto" });
  return h("section", { class: "card", id: "island-settings" }, h("h2", {}, "This Island"),
    field("Name", name, hint(c, "host_name", "Shown in your dashboard; empty uses this computer's name.")),
    field("Region", region, hint(c, "region", "auto lets the coordinator place this Island by its address; or e.g. eu-west.")),
    h("button", { class: "primary", id: "save-island", onclick: () => api.editSettings({ host_name: name.value, region: region.value || "auto" }).then(saved("Island settings")).catch((e) => toast(e.message)) }, "Save"));
}

function where(place) {
  switch (place.place) {
    case "in_url": return "In use: the user and password in coordinator.nats_url.";
    case "keyring": return "In use: credentials stored in the OS keyring.";
    case "file": return `No OS keyring on this machine: the credentials are kept in ${place.path}, readable only by you.`;
    case "none": return "No credentials stored: Island connects only to a coordinator on this computer (a devnet) without them.";
    default: return "";
  }
}

function coordinator(c, place) {
  const url = input("coordinator-url", c.coordinator_url, { size: 36 });
  const user = h("input", { value: "island", placeholder: "User", "aria-label": "User" });
  const pass = h("input", { type: "password", autocomplete: "off", placeholder: "Password", "aria-label": "Password" });
  const note = h("p", { class: "muted", id: "credentials-place" }, where(place));
  const store = () => api.setCredentials(user.value.trim(), pass.value)
    .then(() => { pass.value = ""; toast("Credentials stored; Island reconnects with them now", "ok"); })
    .catch((e) => toast(e.message));
  return h("section", { class: "card", id: "coordinator-settings" }, h("h2", {}, "Coordinator"),
    field("Servers", url, hint(c, "coordinator_url", "nats:// or tls://; a cluster's servers separated by commas (Island also follows the servers the cluster announces). Island reconnects when you save.")),
    h("button", { class: "primary", id: "save-coordinator", onclick: () => api.editSettings({ coordinator_url: url.value.trim() }).then(saved("Coordinator")).catch((e) => toast(e.message)) }, "Save"),
    c.password_in_url ? h("p", { class: "hint" }, "The password in coordinator.nats_url keeps working. To keep it out of config.toml, store it below, then remove it from nats_url in the file.") : null,
    h("h3", {}, "Credentials"),
    h("p", { class: "muted" }, "Used when the URL carries none. They go to the OS keyring and are never shown again."),
    h("p", {}, user, " ", pass, " ", h("button", { class: "primary", onclick: store }, "Store")),
    h("p", {}, h("button", { class: "plain", onclick: () => api.clearCredentials().then(() => toast("Stored credentials removed", "ok")).catch((e) => toast(e.message)) }, "Remove stored credentials")),
    note);
}

function limits(c, slots) {
  const memory = input("memory-mb", c.memory_mb, { inputmode: "numeric", size: 8 });
  const cpu = input("cpu-percent", c.cpu_percent, { inputmode: "numeric", size: 6, placeholder: "unlimited" });
  const jobs = input("max-jobs", c.max_concurrent_jobs, { inputmode: "numeric", size: 4, placeholder: `auto (${slots})` });
  const cache = input("max-cache-gb", c.max_cache_gb, { inputmode: "numeric", size: 6 });
  const network = h("input", { type: "checkbox", id: "network-disabled", checked: c.network_disabled });
  const save = () => api.editSettings({ memory_mb: memory.value, cpu_percent: cpu.value, max_concurrent_jobs: jobs.value, max_cache_gb: cache.value, network_disabled: network.checked })
    .then(saved("Limits")).catch((e) => toast(e.message));
  // Only "Jobs at once" acts today; the others are kept for what comes, and say so, so that
  // nothing here reads as a protection that is not there yet.
  return h("section", { class: "card", id: "limit-settings" }, h("h2", {}, "Resource limits"),
    field("Jobs at once", jobs, "Empty: decided from this machine's hardware."),
    h("h3", {}, "For container Cargos"),
    h("p", { class: "muted", id: "limits-apply" }, "Each container Cargo gets these (a sandbox tier may lower them, never raise them); changes apply to the next job. WASM Cargos get the memory and time of their sandbox tier and have no network."),
    field("Memory per Cargo (MB)", memory),
    field("CPU per Cargo (%)", cpu, "100 is one core; empty for no limit."),
    h("label", {}, network, " Cargos run without network access"),
    h("h3", {}, "Model cache"),
    field("Model cache budget (GB)", cache, hint(c, "max_cache_gb", "Disk budget for downloaded models: before a download the least recently used models are evicted so it fits; pinned and in-use models stay.")),
    h("p", {}, h("button", { class: "primary", id: "save-limits", onclick: save }, "Save")));
}

function docker(store) {
  const body = h("div", {}, h("p", { class: "muted" }, "Checking for Docker…"));
  const check = () => api.dockerStatus().then((d) => body.replaceChildren(
    d.state === "available"
      ? h("p", { id: "docker-state" }, `Docker ${d.version} (API ${d.api_version}) is running at ${d.endpoint}.`)
      : h("p", { id: "docker-state", class: "error" }, d.state === "missing" ? `Docker was not found at ${d.endpoint}.` : `Docker at ${d.endpoint} did not answer: ${d.reason}.`),
    d.hint ? h("p", { class: "hint" }, d.hint) : null,
    h("p", { class: "muted", id: "container-cargos" }, (store.status?.runtimes || []).includes("container")
      ? "Island runs container Cargos on this engine."
      : d.state === "available"
        ? "Island has not used this engine yet: it looks again every 30 seconds and then runs container Cargos on it."
        : "Without Docker, Island runs WASM Cargos only."),
    h("button", { class: "plain", onclick: check }, "Check again"))).catch((e) => toast(e.message));
  check();
  return h("section", { class: "card", id: "docker-settings" }, h("h2", {}, "Docker"), body);
}

export default function settings(main, store) {
  const auto = h("input", { type: "checkbox", "aria-label": "Start at login" });
  // The headless agent has a login entry of its own; both on would start two Islands, and
  // the second to start stops at once, so the owner is told.
  const both = h("p", { class: "muted", id: "login-both", hidden: true },
    "The headless agent also starts at login (", h("code", {}, "island autostart on"),
    "). Only one Island runs at a time: keep this one and run ", h("code", {}, "island autostart off"),
    ", or untick the box above.");
  const agentOnly = h("p", { class: "muted", id: "login-agent", hidden: true },
    "The headless agent starts at login instead of this app (", h("code", {}, "island autostart on"), ").");
  const show = (entries) => {
    auto.checked = entries.desktop;
    both.hidden = !(entries.desktop && entries.agent);
    agentOnly.hidden = !(entries.agent && !entries.desktop);
  };
  const refresh = () => api.getAutostart().then(show);
  refresh().catch(() => (auto.disabled = true));
  auto.addEventListener("change", () => api.setAutostart(auto.checked).then(refresh).catch((e) => toast(e.message)));
  const login = card("Start at login", h("label", {}, auto, " Start Island hidden in the tray when I log in"),
    both, agentOnly);
  const forms = h("div", { class: "contents" });
  let shown = "";
  // Forms follow the saved settings, but never while the owner is typing in them.
  const render = ({ status: s }) => {
    if (!s || typingIn(forms)) return;
    const now = JSON.stringify([s.settings, s.credentials]);
    if (now === shown) return;
    shown = now;
    forms.replaceChildren(island(s.settings), coordinator(s.settings, s.credentials), limits(s.settings, s.max_concurrent_jobs));
  };
  main.replaceChildren(forms, login, docker(store));
  const off = subscribe(render);
  render(store);
  return off;
}
