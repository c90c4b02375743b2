// Logs: a live tail that keeps up (lines are batched per animation frame, the view keeps
// the last 5000), with a level filter, text search, per-job filter and pause.
import * as api from "../api.js";
import { toast } from "../main.js";
import { card, copyText, h } from "./util.js";

const KEEP = 5000;
const RANK = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

export default function logs(main) {
  const lines = [];
  let pending = [], paused = false, frame = 0;
  const out = h("div", { id: "logs", role: "log", "aria-live": "off" });
  const level = h("select", { "aria-label": "Level" }, ...["info", "warn", "error", "debug", "trace"].map((l) => h("option", { value: l }, l)));
  const search = h("input", { id: "logs-search", placeholder: "Search", "aria-label": "Search" });
  const job = h("input", { id: "logs-job", placeholder: "Job id", "aria-label": "Job" });
  const pause = h("button", { class: "plain", onclick: () => { paused = !paused; pause.textContent = paused ? "Follow" : "Pause scrolling"; } }, "Pause scrolling");
  const shown = (l) => RANK[l.level] <= RANK[level.value] && (!search.value || l.message.includes(search.value)) && (!job.value || l.job_id === job.value);
  const line = (l) => h("div", { class: l.level, "data-job": l.job_id }, `${new Date(l.ts_ms).toLocaleTimeString()} ${l.level.toUpperCase()} ${l.message}`);
  const redraw = () => out.replaceChildren(...lines.filter(shown).map(line));
  const flush = () => {
    frame = 0;
    lines.push(...pending);
    const fresh = pending.filter(shown).map(line);
    pending = [];
    if (lines.length > KEEP) { lines.splice(0, lines.length - KEEP); redraw(); } else out.append(...fresh);
    while (out.childElementCount > KEEP) out.firstChild.remove();
    if (!paused) out.scrollTop = out.scrollHeight;
  };
  const add = (l) => { pending.push(l); if (!frame) frame = requestAnimationFrame(flush); };
  const copy = h("button", { class: "plain", onclick: () => copyText(out.innerText).then(() => toast("Copied the shown lines", "ok")).catch((e) => toast(e.message)) }, "Copy");
  // The core writes the file (a webview has no reliable download): the lines it holds, filtered as shown.
  // It says how many lines the file holds: the core keeps fewer lines than this view may show.
  const save = h("button", { class: "plain", id: "logs-export", onclick: () => api.exportLogs({ level: level.value, text: search.value, job: job.value })
    .then((r) => {
      const fewer = r.lines < out.childElementCount
        ? ` (this view shows ${out.childElementCount}; Island keeps the last ${r.kept} lines in memory, and logs/island.log has them all)` : "";
      toast(`Saved ${r.lines} lines to ${r.path}${fewer}`, "ok");
    }).catch((e) => toast(e.message)) }, "Export");
  [level, search, job].forEach((el) => el.addEventListener("input", redraw));
  main.replaceChildren(h("section", { class: "card wide" }, h("h2", {}, "Live log"),
    h("p", {}, level, " ", search, " ", job, " ", pause, " ", copy, " ", save), out));
  api.recentLogs().then((recent) => recent.forEach(add)).catch(() => {});
  // Lines arrive in batches (at most every 50 ms) from the core.
  return api.onEvent("logs", (batch) => batch.forEach(add));
}
