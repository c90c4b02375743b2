// Overview: the first run until it is done; then faults, what the Island is doing (the
// core's headline, as the badge and the tray say it), the coordinator, running jobs, today.
import * as api from "../api.js";
import { subscribe } from "../store.js";
import { toast } from "../main.js";
import { bar, bytes, card, duration, h } from "./util.js";
import { firstRun, problem, tickExpiry } from "./firstrun.js";

const hostName = (url) => url.replace(/^[a-z]+:\/\//, "").replace(/\/.*$/, "");

export default function overview(main, store) {
  // The buttons live as long as the view, so a click never lands on one just replaced.
  const pause = h("button", { class: "primary", id: "pause", onclick: () => api.pause(false).catch((e) => toast(e.message)) }, "Pause hosting");
  const resume = h("button", { class: "primary", id: "resume", onclick: () => api.resume().catch((e) => toast(e.message)) }, "Resume hosting");
  const stopNow = h("button", { class: "plain", id: "stop-now", onclick: () => api.pause(true).catch((e) => toast(e.message)) }, "Stop running jobs now");
  const first = firstRun();
  // Image pulls of running container jobs, by job id (the core's island://image-pull).
  const pulls = new Map();
  const offPulls = api.onEvent("image-pull", (p) => { pulls.set(p.job_id, p); render(store); });
  let wasSettingUp = null, pairedNote = false, shownLink = "", linkCard = null;
  const render = ({ status: s }) => {
    if (!s) return;
    const settingUp = first.render(s);
    // Pairing completed while the window was open: say so.
    if (wasSettingUp && !settingUp && s.pairing.paired) pairedNote = true;
    wasSettingUp = settingUp;
    const paired = pairedNote ? card("Paired", h("p", { class: "ok-note", id: "paired-note" }, "This Island is linked to your account. It takes Cargos when the network needs it; you can close this window, Island keeps running in the tray.")) : null;
    const hd = s.headline;
    const controls = h("div", { class: "controls" }, s.owner_paused ? resume : pause, s.hosting === "draining" ? stopNow : null);
    const state = card("Hosting",
      h("p", { class: `num state-${hd.kind}`, id: "hosting-state" }, hd.title),
      hd.detail ? h("p", { class: "muted" }, hd.detail) : null,
      s.gpu_hold && hd.kind !== "held" ? h("p", { class: "error" }, `GPU jobs on hold: ${s.gpu_hold}`) : null,
      controls);
    const faults = s.faults && s.faults.length
      ? card("Needs attention", ...s.faults.map((f) => h("p", { class: "error", "data-fault": f.kind }, f.message)))
      : null;
    // The coordinator card is rebuilt only when the link changed, so an opened "Technical
    // detail" stays open; the first run covers it while the Island is not connected yet.
    const live = JSON.stringify([s.link, s.settings.coordinator_url]);
    if (live !== shownLink) {
      shownLink = live;
      linkCard = card("Coordinator",
        h("p", { id: "link-state" }, s.link.state === "connected" ? `Connected to ${hostName(s.settings.coordinator_url)}` : "Not connected"),
        s.link.state === "connected" ? null : problem(s.link));
    }
    for (const id of pulls.keys()) if (!s.running.some((j) => j.id === id)) pulls.delete(id);
    const pulling = (j) => {
      const p = pulls.get(j.id);
      if (!p || p.finished) return null;
      const of = p.total ? ` of ${bytes(p.total)}` : "";
      return h("div", { class: "pull", "data-pull": j.id }, h("small", { class: "muted" }, `Pulling ${p.image}: ${bytes(p.done)}${of}`),
        bar(p.done, p.total || 0, `Pulling the image of ${j.workload_id || j.id}`));
    };
    const rows = s.running.map((j) => h("tr", {},
      h("td", {}, j.workload_id || j.id, pulling(j)), h("td", {}, j.runtime), h("td", {}, duration(Date.now() - j.started_at_ms)),
      h("td", {}, h("button", { class: "plain", "aria-label": `Cancel ${j.workload_id || j.id}`, onclick: () => api.cancelJob(j.id).catch((e) => toast(e.message)) }, "Cancel"))));
    const jobs = card("Running jobs", rows.length
      ? h("table", {}, h("tr", {}, h("th", {}, "Cargo"), h("th", {}, "Runtime"), h("th", {}, "Running for"), h("th", {}, h("span", { class: "offscreen" }, "Actions"))), rows)
      : h("p", { class: "muted" }, hd.kind === "hosting" ? "No job right now: Cargos arrive when the network needs this Island." : "No job runs while the Island is not hosting."));
    const e = s.earnings;
    const today = card("Today",
      h("p", {}, h("span", { class: "num" }, `${e.today.succeeded}`), " succeeded · ", `${e.today.failed} failed · ${e.today.cancelled} cancelled`),
      // These add up the owner's own asking prices; what the network paid is not reported yet.
      h("p", {}, h("span", { class: "num" }, e.credits_today), " credits asked for today's succeeded jobs"),
      h("p", { class: "muted" }, `${e.credits_total} credits asked over the last 30 days (at your prices; payments are not reported to the Island yet)`));
    const setupCard = settingUp ? first.card : null;
    const coordinator = s.setup === "connect" ? null : linkCard;
    const wanted = [setupCard, paired, faults, state, coordinator, jobs, today].filter(Boolean);
    // Cards that stay are kept in place (not re-inserted): focus and open details survive.
    syncChildren(main, wanted);
    tickExpiry(main);
  };
  const timer = setInterval(() => tickExpiry(main), 1000);
  const off = subscribe(render);
  render(store);
  return () => { off(); offPulls(); clearInterval(timer); };
}

// Makes `parent`'s children exactly `wanted`, moving only what is out of place.
function syncChildren(parent, wanted) {
  wanted.forEach((el, i) => {
    if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] || null);
  });
  while (parent.children.length > wanted.length) parent.lastChild.remove();
}
