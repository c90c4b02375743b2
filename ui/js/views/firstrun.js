// The first run, at the top of the Overview until it is done: 1. connect (the coordinator
// address and the credentials from the owner's dashboard, which go to the OS keyring),
// 2. pair (the code, large, and the pairing page in the system browser). Its fields live as
// long as the view, so a status update never wipes what the owner is typing.
import * as api from "../api.js";
import { toast } from "../main.js";
import { copyText, duration, field, h } from "./util.js";

// What went wrong, as the core worded it, with the technical detail one click away.
export function problem(link) {
  if (!link.reason) return null;
  return h("div", { class: "problem" },
    h("p", { class: link.state === "connected" ? "muted" : "error", "data-problem": link.problem || "" }, sentence(link.reason)),
    link.action ? h("p", { class: "muted" }, link.action) : null,
    link.detail ? h("details", {}, h("summary", {}, "Technical detail"), h("pre", {}, link.detail)) : null);
}

const sentence = (s) => (s ? s[0].toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? "" : ".") : "");

function steps(setup) {
  const item = (name, label) => h("li", {
    "aria-current": setup === name ? "step" : null,
    class: setup === "pair" && name === "connect" ? "done" : null,
  }, label);
  return h("ol", { class: "steps", "aria-label": "Getting started" }, item("connect", "1. Connect"), item("pair", "2. Pair"));
}

export function firstRun() {
  const url = h("input", { id: "fr-url", autocomplete: "off", spellcheck: "false" });
  const user = h("input", { id: "fr-user", value: "island", autocomplete: "username" });
  const pass = h("input", { id: "fr-password", type: "password", autocomplete: "current-password" });
  const outcome = h("div", { class: "outcome", id: "fr-outcome", role: "status", "aria-live": "polite" });
  const go = h("button", { class: "primary", id: "fr-connect", type: "submit" }, "Connect");
  let busy = false, filled = false, last = null;
  const connect = (e) => {
    e.preventDefault();
    busy = true;
    go.disabled = true;
    outcome.replaceChildren(h("p", { class: "muted" }, "Connecting…"));
    api.connect(url.value.trim(), user.value.trim(), pass.value)
      .then((link) => {
        pass.value = "";
        last = link;
        shownLink = "";
        outcome.replaceChildren(link.state === "connected"
          ? h("p", { class: "ok-note" }, "Connected. The password is in your system's keyring.")
          : problem(link) || h("p", { class: "muted" }, "Still trying to connect…"));
      })
      .catch((err) => outcome.replaceChildren(h("p", { class: "error" }, err.message)))
      .finally(() => { busy = false; go.disabled = false; });
  };
  const form = h("form", { id: "fr-form", onsubmit: connect },
    h("p", {}, "Island needs the coordinator's address and the user name and password from your Archipelag.io dashboard. The password goes to this computer's keyring, never into a file."),
    field("Coordinator address", url, "The default is the Archipelag.io network."),
    field("User name", user),
    field("Password", pass),
    h("p", {}, go),
    outcome);
  const pairing = h("div", { id: "fr-pairing" });
  const card = h("section", { class: "card", id: "first-run", "aria-labelledby": "first-run-title" });

  const renderPair = (s) => {
    const p = s.pairing;
    if (!p.code) {
      const waiting = s.link.state === "connected" ? "Waiting for a pairing code from the coordinator…" : "Waiting for the connection to come back…";
      return pairing.replaceChildren(h("p", { class: "muted" }, waiting), problem(s.link));
    }
    pairing.replaceChildren(
      h("p", {}, "Enter this code in your Archipelag.io dashboard to link this Island to your account:"),
      h("p", { class: "code", id: "pairing-code", "aria-label": `Pairing code ${p.code.split("").join(" ")}` }, p.code),
      h("p", { class: "controls" },
        h("button", { class: "plain", onclick: () => copyText(p.code).then(() => toast("Code copied", "ok")).catch((e) => toast(e.message)) }, "Copy code"),
        // The page opens in the owner's browser through the core (https only), never here.
        p.url ? h("button", { class: "primary", id: "pairing-page", onclick: () => api.openPairingPage().catch((e) => toast(e.message)) }, "Open the pairing page") : null),
      p.url ? h("p", { class: "muted" }, p.url) : null,
      p.expires_at_ms ? h("p", { class: "muted", "data-expires": p.expires_at_ms }, "") : null);
  };

  const title = h("h2", { id: "first-run-title" });
  const stepList = h("div");
  let step = null, shownLink = "";
  // Updates the card for a status; returns whether it is shown at all. The form is put in
  // place only when the step changes: moving it would take the focus from the owner's typing.
  const render = (s) => {
    if (s.setup === "done") return false;
    if (!filled) { url.value = s.settings.coordinator_url; filled = true; }
    if (s.setup !== step) {
      step = s.setup;
      title.textContent = step === "connect" ? "Connect this Island" : "Pair this Island";
      stepList.replaceChildren(steps(step));
      card.replaceChildren(title, stepList, step === "connect" ? form : pairing);
    }
    if (step === "connect") {
      // The live state, unless an answer to the owner's own "Connect" is on show.
      const live = JSON.stringify(s.link);
      if (!busy && (!last || last.generation < s.link.generation) && live !== shownLink) {
        last = null;
        shownLink = live;
        outcome.replaceChildren(...[s.link.state === "no_credentials" ? null : problem(s.link)].filter(Boolean));
      }
    } else {
      renderPair(s);
    }
    return true;
  };
  return { card, render };
}

// Counts down the pairing code's life in `root`.
export function tickExpiry(root) {
  root.querySelectorAll("[data-expires]").forEach((el) => {
    const left = Number(el.dataset.expires) - Date.now();
    el.textContent = left > 0 ? `The code expires in ${duration(left)}` : "Expired; a new code is on its way";
  });
}
