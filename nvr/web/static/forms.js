// Forms of the settings pages: labelled fields with an error slot each, and the mapping of
// the server's one-line refusal to the field it names. Every form is validated by the
// server; the API's 400 names the field by its JSON path ("camera.streams.main.url ...",
// "user.username ..."), and a few other refusals name it in words ("a camera named ...
// already exists"). `FieldErrors.show` puts the message under the field whose key the
// message contains (the longest key wins, so "camera.streams.main.url" beats
// "camera.streams.main"), else above the form's buttons.

import { el } from "./dom.js";
import { formatBytes } from "./format.js";

let nextId = 0;

/** A labelled input with an error slot: `{wrap, input, error}`. */
export function field(label, input, hint) {
  const id = input.id || `f${++nextId}`;
  input.id = id;
  const error = el("p", { class: "field-error", role: "alert", hidden: "" });
  const describedBy = [];
  let hintEl = null;
  if (hint) {
    hintEl = el("p", { class: "muted small field-hint", id: `${id}-hint` }, hint);
    describedBy.push(hintEl.id);
  }
  error.id = `${id}-error`;
  describedBy.push(error.id);
  input.setAttribute("aria-describedby", describedBy.join(" "));
  const wrap = el("div", { class: "field" }, el("label", { for: id }, label), input, hintEl, error);
  return { wrap, input, error };
}

export function input(attrs = {}) {
  return el("input", { autocomplete: "off", spellcheck: "false", autocapitalize: "none", ...attrs });
}

export function checkbox(label, checked, attrs = {}) {
  const box = el("input", { type: "checkbox", checked: checked || null, ...attrs });
  return { box, wrap: el("label", { class: "check" }, box, label) };
}

export class FieldErrors {
  constructor(general) {
    this.general = general; // the slot for a refusal that names no field
    this.fields = []; // [key, {input, error}]
  }

  add(keys, f) {
    for (const k of [].concat(keys)) this.fields.push([k, f]);
    return f;
  }

  clear() {
    for (const [, f] of this.fields) {
      f.error.hidden = true;
      f.input.removeAttribute("aria-invalid");
    }
    this.general.hidden = true;
  }

  /** Shows `message` under the field it names; returns that field's input, or null. */
  show(message) {
    this.clear();
    let best = null;
    for (const [k, f] of this.fields) {
      if (message.includes(k) && (!best || k.length > best[0].length)) best = [k, f];
    }
    if (!best) {
      this.general.textContent = message;
      this.general.hidden = false;
      return null;
    }
    const f = best[1];
    f.error.textContent = message;
    f.error.hidden = false;
    f.input.setAttribute("aria-invalid", "true");
    f.input.focus();
    return f.input;
  }
}

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)b?$/i;

/** Bytes from "500G", "2TiB", "1.5GB" or "123", as `nvr.base.units.parse_size` reads them
 * (K..P: powers of 1000; with "i", of 1024); the text itself when it is not a size, so
 * that the server refuses it naming the field. */
export function parseSize(text) {
  const m = SIZE_RE.exec(text.trim());
  if (!m || (m[3] && !m[2])) return text;
  const exp = m[2] ? "kmgtp".indexOf(m[2].toLowerCase()) + 1 : 0;
  return Math.round(Number(m[1]) * (m[3] ? 1024 : 1000) ** exp);
}

/** A byte count as a size field shows it ("10 GB", "2 TiB"), without the space. */
export function sizeText(n) {
  return n == null ? "" : formatBytes(n).replace(" ", "");
}
