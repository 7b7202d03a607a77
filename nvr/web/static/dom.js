// Small DOM helpers: building elements without innerHTML (no markup from data, ever).

/** el("div", {class: "x", onclick: f}, "text", child, [children]) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

let toastTimer = null;

export function toast(message, ms = 4000) {
  const t = document.getElementById("toast");
  t.textContent = message;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), ms);
}

/** A segmented control of radio buttons; returns the fieldset. */
export function segmented(name, legend, options, value, onChange) {
  const fs = el("fieldset", { class: "segmented" }, el("legend", { class: "sr-only" }, legend));
  for (const [v, label, title] of options) {
    const id = `${name}-${v}`;
    const input = el("input", { type: "radio", name, id, value: v, checked: v === value });
    input.addEventListener("change", () => onChange(v));
    fs.append(input, el("label", { for: id, title: title || null }, label));
  }
  return fs;
}

export function stateBadge(status) {
  if (!status) return el("span", { class: "badge idle" }, "not recorded");
  const text = {
    recording: "recording",
    connecting: "connecting",
    backoff: "reconnecting",
    idle: "stopped",
  }[status.state] || status.state;
  return el("span", { class: `badge ${status.state}` }, text);
}
