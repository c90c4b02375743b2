// A tiny observable store: the latest status from the core, who wants to know, and a short
// history of the live figures for the charts.
const listeners = new Set();
export const store = { status: null, history: { cpu: [], gpus: {} } };

// One point every 5 s, 10 minutes kept: sampled on a timer (not per status change) so the
// charts' time axis is even however often the status changes.
const EVERY_MS = 5000, KEEP = 120;

export function setStatus(status) {
  const first = !store.status;
  store.status = status;
  if (first) sample();
  listeners.forEach((fn) => fn(store));
}

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export const gpuId = (g) => g.uuid || String(g.index);

function push(list, v) {
  list.push(v ?? null);
  if (list.length > KEEP) list.shift();
}

// Starts the charts with the history the core kept before this window opened: the points
// older than what the window sampled itself, GPUs matched by index.
export function seedHistory(points) {
  const s = store.status;
  if (!s || !points?.length) return;
  const byIndex = new Map(s.hardware.gpus.map((g) => [g.index, gpuId(g)]));
  const cpu = [], gpus = {};
  for (const p of points.slice(-(KEEP - store.history.cpu.length))) {
    cpu.push(p.cpu_percent ?? null);
    for (const [index, id] of byIndex) {
      const live = (p.gpus.find(([i]) => i === index) || [])[1] || {};
      const h = (gpus[id] ||= { util: [], temp: [], vram: [] });
      h.util.push(live.utilization_percent ?? null);
      h.temp.push(live.temperature_c ?? null);
      h.vram.push(live.memory_used_mb ?? null);
    }
  }
  store.history.cpu.unshift(...cpu);
  for (const [id, h] of Object.entries(gpus)) {
    const mine = (store.history.gpus[id] ||= { util: [], temp: [], vram: [] });
    for (const k of ["util", "temp", "vram"]) mine[k].unshift(...h[k]);
  }
  listeners.forEach((fn) => fn(store));
}

function sample() {
  const s = store.status;
  if (!s) return;
  push(store.history.cpu, s.hardware.usage.cpu_percent);
  for (const g of s.hardware.gpus) {
    const h = (store.history.gpus[gpuId(g)] ||= { util: [], temp: [], vram: [] });
    const live = g.live || {};
    push(h.util, live.utilization_percent);
    push(h.temp, live.temperature_c);
    push(h.vram, live.memory_used_mb);
  }
}

setInterval(sample, EVERY_MS);
