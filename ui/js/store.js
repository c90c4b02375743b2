// A tiny observable store: the latest status from the core, and who wants to know.
const listeners = new Set();
export const store = { status: null, logs: [] };

export function setStatus(status) {
  store.status = status;
  listeners.forEach((fn) => fn(store));
}

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
