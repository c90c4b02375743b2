// The only module that talks to the backend (window.__TAURI__). Views import these
// functions; errors arrive as {code, message} from the core.
const tauri = window.__TAURI__;

function invoke(cmd, args) {
  if (!tauri) return Promise.reject({ code: "no_backend", message: "Island's backend is not available (opened outside the app)" });
  return tauri.core.invoke(cmd, args);
}

export const getStatus = () => invoke("get_status");
// Once, when the window first shows the status: the app logs how long opening took.
export const windowPainted = () => invoke("window_painted");
export const openPairingPage = () => invoke("open_pairing_page");
export const recentLogs = () => invoke("recent_logs");
// The core's last minutes of live figures: [{at_ms, cpu_percent, gpus: [[index, live]]}].
export const recentFigures = () => invoke("recent_figures");
// The first-run "Connect": resolves to the link status of the attempt made with these.
export const connect = (url, user, password) => invoke("connect", { url, user, password });
// filter: {level, text, job}; resolves to the new file's path.
export const exportLogs = (filter) => invoke("export_logs", { filter });
export const pause = (now = false) => invoke("pause", { now });
export const resume = () => invoke("resume");
export const cancelJob = (id) => invoke("cancel_job", { id });
export const setPrice = (workload, price) => invoke("set_price", { workload, price });
export const setGpus = (devices) => invoke("set_gpus", { devices });
// form: SettingsForm fields as typed (absent: unchanged); checked and applied by the core.
export const editSettings = (form) => invoke("edit_settings", { form });
export const dockerStatus = () => invoke("docker_status");
export const setCredentials = (user, password) => invoke("set_credentials", { user, password });
export const clearCredentials = () => invoke("clear_credentials");
export const getAutostart = () => invoke("get_autostart");
export const setAutostart = (on) => invoke("set_autostart", { on });
// Resolves to "cached" (it was there), "ready" (it is now) or "downloading" (the status
// carries the download's progress).
export const pullModel = (uri, sha256) => invoke("pull_model", { uri, sha256: sha256 || null });
export const cancelModelDownload = (model) => invoke("cancel_model_download", { model });
export const evictModel = (model) => invoke("evict_model", { model });
export const pinModel = (model, pinned) => invoke("pin_model", { model, pinned });

// name: "status", "job", "job-output", "logs" (an array of lines), "link", "model-progress",
// "changed" (island://…)
export function onEvent(name, fn) {
  if (!tauri) return () => {};
  let unlisten = () => {};
  tauri.event.listen(`island://${name}`, (e) => fn(e.payload)).then((u) => (unlisten = u));
  return () => unlisten();
}
