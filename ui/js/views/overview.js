// Overview: faults, hosting state, pairing code, running jobs, today's counters and credits asked.
import * as api from "../api.js";
import { subscribe } from "../store.js";
import { toast } from "../main.js";
import { card, copyText, duration, h } from "./util.js";

export default function overview(main, store) {
  // The buttons live as long as the view, so a click never lands on one just replaced.
  const pause = h("button", { class: "primary", id: "pause", onclick: () => api.pause(false).catch((e) => toast(e.message)) }, "Pause hosting");
  const resume = h("button", { class: "primary", id: "resume", onclick: () => api.resume().catch((e) => toast(e.message)) }, "Resume hosting");
  const stopNow = h("button", { class: "plain", id: "stop-now", onclick: () => api.pause(true).catch((e) => toast(e.message)) }, "Stop running jobs now");
  const render = ({ status: s }) => {
    if (!s) return;
    const hosting = s.hosting === "hosting";
    const controls = h("div", { class: "controls" }, hosting ? pause : resume, s.hosting === "draining" ? stopNow : null);
    const state = card("Hosting",
      h("p", { class: "num" }, { hosting: "Hosting", draining: "Finishing running jobs", paused: "Paused" }[s.hosting]),
      s.pause_reason ? h("p", { class: "muted" }, s.pause_reason) : null,
      s.gpu_hold ? h("p", { class: "error" }, `GPU jobs on hold: ${s.gpu_hold}`) : null,
      controls);
    const faults = s.faults && s.faults.length
      ? card("Needs attention", ...s.faults.map((f) => h("p", { class: "error", "data-fault": f.kind }, f.message)))
      : null;
    const link = card("Coordinator",
      h("p", {}, s.link.state === "connected" ? "Connected" : s.link.state.replace("_", " ")),
      s.link.reason ? h("p", { class: s.link.state === "auth_failed" ? "error" : "muted" }, s.link.reason) : null);
    const pairing = s.pairing.paired ? null : card("Pair this Island",
      s.pairing.code
        ? [h("p", { class: "code", id: "pairing-code" }, s.pairing.code),
           h("button", { class: "plain", onclick: () => copyText(s.pairing.code).then(() => toast("Code copied", "ok")).catch((e) => toast(e.message)) }, "Copy code"),
           // The page opens in the owner's browser through the core (https only), never in this window.
           s.pairing.url ? h("p", {}, "Enter it at ", h("button", { class: "link", id: "pairing-page", onclick: () => api.openPairingPage().catch((e) => toast(e.message)) }, s.pairing.url)) : null,
           s.pairing.expires_at_ms ? h("p", { class: "muted", "data-expires": s.pairing.expires_at_ms }, "") : null]
        : h("p", { class: "muted" }, "Waiting for a pairing code from the coordinator…"));
    const rows = s.running.map((j) => h("tr", {},
      h("td", {}, j.workload_id || j.id), h("td", {}, j.runtime), h("td", {}, duration(Date.now() - j.started_at_ms)),
      h("td", {}, h("button", { class: "plain", onclick: () => api.cancelJob(j.id).catch((e) => toast(e.message)) }, "Cancel"))));
    const jobs = card("Running jobs", rows.length
      ? h("table", {}, h("tr", {}, h("th", {}, "Cargo"), h("th", {}, "Runtime"), h("th", {}, "Running for"), h("th", {}, "")), rows)
      : h("p", { class: "muted" }, hosting ? "No job right now: Cargos arrive when the network needs this Island." : "Resume hosting to take jobs."));
    const e = s.earnings;
    const today = card("Today",
      h("p", {}, h("span", { class: "num" }, `${e.today.succeeded}`), " succeeded · ", `${e.today.failed} failed · ${e.today.cancelled} cancelled`),
      // These add up the owner's own asking prices; what the network paid is not reported yet.
      h("p", {}, h("span", { class: "num" }, e.credits_today), " credits asked for today's succeeded jobs"),
      h("p", { class: "muted" }, `${e.credits_total} credits asked over the last 30 days (at your prices; payments are not reported to the Island yet)`));
    main.replaceChildren(...[faults, state, link, pairing, jobs, today].filter(Boolean));
    tick();
  };
  const tick = () => main.querySelectorAll("[data-expires]").forEach((el) => {
    const left = Number(el.dataset.expires) - Date.now();
    el.textContent = left > 0 ? `Expires in ${duration(left)}` : "Expired; a new code is on its way";
  });
  const timer = setInterval(tick, 1000);
  const off = subscribe(render);
  render(store);
  return () => { off(); clearInterval(timer); };
}
