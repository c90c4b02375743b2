// Small DOM helpers shared by the views.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined));
  return el;
}

export const card = (title, ...body) => h("section", { class: "card" }, h("h2", {}, title), ...body);

export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// Copies text to the clipboard: the async API where the webview offers it, else the
// selection-based fallback (both need the click that calls this).
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return;
  } catch (_) { /* not offered here: fall back */ }
  const area = h("textarea", { readonly: true, class: "offscreen" });
  area.value = text;
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw { code: "clipboard", message: "The clipboard is not available: select the text and copy it by hand" };
}

// Whether the owner is typing in a field inside `el` (a view then holds back re-rendering it).
export function typingIn(el) {
  const a = document.activeElement;
  if (!a || !el || !el.contains(a)) return false;
  return a.tagName === "TEXTAREA" || a.tagName === "SELECT" || (a.tagName === "INPUT" && a.type !== "checkbox");
}

// A labelled input; `hint` below it.
export const field = (label, input, hint) => h("label", { class: "field" }, h("span", {}, label), input, hint ? h("small", { class: "muted" }, hint) : null);

// A meter bar. Widths go through the CSSOM: the strict CSP forbids inline style attributes.
export function bar(used, total, label) {
  const fill = h("span");
  fill.style.width = `${total ? Math.min(100, (100 * used) / total) : 0}%`;
  return h("div", { class: "bar", role: "meter", "aria-label": label, "aria-valuenow": used, "aria-valuemin": 0, "aria-valuemax": total }, fill);
}

const SVG = "http://www.w3.org/2000/svg";
const svg = (tag, attrs) => {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
};

// A small line chart of `values` (nulls are gaps) on 0..max, with an optional limit line.
export function spark(values, max, { label, limit } = {}) {
  const W = 240, H = 48;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "spark", role: "img", "aria-label": label || "" });
  const x = (i) => (values.length > 1 ? (i * W) / (values.length - 1) : W);
  const y = (v) => H - 2 - (Math.min(v, max) / (max || 1)) * (H - 4);
  if (limit !== undefined) chart.append(svg("line", { x1: 0, x2: W, y1: y(limit), y2: y(limit), class: "limit" }));
  let run = [];
  const flush = () => {
    if (run.length === 1) {
      const [cx, cy] = run[0].split(",");
      chart.append(svg("circle", { cx, cy, r: 2 }));
    } else if (run.length) chart.append(svg("polyline", { points: run.join(" ") }));
    run = [];
  };
  values.forEach((v, i) => (v === null ? flush() : run.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`)));
  flush();
  return chart;
}

export function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}
