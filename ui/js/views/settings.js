// Settings: coordinator credentials (stored in the OS keyring, never shown again) and
// starting at login.
import * as api from "../api.js";
import { toast } from "../main.js";
import { card, h } from "./util.js";

export default function settings(main) {
  const user = h("input", { value: "island", placeholder: "User", "aria-label": "User" });
  const pass = h("input", { type: "password", autocomplete: "off", placeholder: "Password", "aria-label": "Password" });
  const saved = h("p", { class: "muted" });
  const store = () => api.setCredentials(user.value.trim(), pass.value)
    .then(() => { pass.value = ""; saved.textContent = "Stored in the OS keyring. Island reconnects with them now."; })
    .catch((e) => toast(e.message));
  const auto = h("input", { type: "checkbox", "aria-label": "Start at login" });
  api.getAutostart().then((on) => (auto.checked = on)).catch(() => (auto.disabled = true));
  auto.addEventListener("change", () => api.setAutostart(auto.checked).catch((e) => toast(e.message)));
  main.replaceChildren(
    card("Coordinator credentials",
      h("p", { class: "muted" }, "Used when coordinator.nats_url carries none. They go to the OS keyring and are never shown again."),
      h("p", {}, user, " ", pass, " ", h("button", { class: "primary", onclick: store }, "Store")),
      h("p", {}, h("button", { class: "plain", onclick: () => api.clearCredentials().catch((e) => toast(e.message)) }, "Remove stored credentials")),
      saved),
    card("Start at login", h("label", {}, auto, " Start Island hidden in the tray when I log in")),
    card("Container Cargos", h("p", { class: "muted" }, "Not available yet: this Island runs WASM Cargos.")));
}
