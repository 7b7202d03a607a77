// The download panel: a span selected on the timeline (or typed as HH:MM:SS.mmm in the
// server's zone), the camera to download it from, and one `.mp4` link per run in it
// (`recordings-runs.js`), each with its duration and estimated size. With
// `protectVideo`, the span can be protected from retention (with a reason); the
// camera's protected spans are listed below it, each removable with that permission.
// The export form downloads the span of one or several cameras (checkboxes; the camera
// shown is ticked) as one signed `.zip` (`GET /api/export`, `viewVideo`); several spans
// go in one zip by adding each selection to the form's list (kept while other spans are
// selected, each removable): the zip then holds the listed spans.

import * as api from "./api.js";
import { exportUrl, viewMp4Url } from "./api.js";
import { el, toast } from "./dom.js";
import { formatBytes, formatDuration, formatTime } from "./format.js";
import { downloadParts } from "./recordings-runs.js";
import { UNITS_PER_SEC as U } from "./time.js";

/** At most this many spans in one export (the server's `MAX_RANGES`). */
const MAX_EXPORT_SPANS = 32;

/** A typed time of day `H:MM[:SS[.mmm]]` in 90k units after midnight, or null. */
export function parseClock(text) {
  const m = /^\s*(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?\s*$/.exec(text);
  if (!m) return null;
  const ms = Number((m[4] || "0").padEnd(3, "0"));
  return ((+m[1] * 60 + +m[2]) * 60 + +(m[3] || 0)) * U + ms * 90;
}

export class SelectionPanel {
  /** `source` reads the page's current data: `cameras()`, `rows(ci)`, `stream()` and
   * `dayStart()` (the start of the day shown); `onChange(span)` hears each new span
   * ([start, end) or null) to draw it; `onProtected()` that a span was protected or a
   * protection removed here. */
  constructor({ tz, source, onChange, session, onProtected = () => {} }) {
    this.tz = tz;
    this.source = source;
    this.onChange = onChange;
    this.onProtected = onProtected;
    this.session = session;
    this.span = null;
    this.exportSpans = []; // [start, end) spans added to the export form, by start
    this.camera = 0; // the index of the camera to download from
    this.root = el("div", { class: "selection", id: "selection", hidden: true });
  }

  /** Shows span [start, end) of camera `ci` (default: the one shown last), or nothing. */
  show(span, ci = this.camera) {
    this.span = span;
    this.camera = ci;
    this.render();
  }

  render() {
    const sel = this.span;
    const root = this.root;
    if (!sel) {
      root.hidden = true;
      root.replaceChildren();
      this.onChange(null);
      return;
    }
    this.onChange(sel);
    root.hidden = false;
    const cams = this.source.cameras();
    const ci = Math.min(this.camera, cams.length - 1);
    const cam = cams[ci];
    const parts = downloadParts(this.source.rows(ci), sel[0], sel[1]);
    const [from, fromInput] = this.timeInput("sel-from", "From", sel[0]);
    const [to, toInput] = this.timeInput("sel-to", "to", sel[1]);
    const dayStart = this.source.dayStart();
    // read back as that much time after the start of the day (a day with a DST change
    // is off by the change after it)
    const change = () => {
      const ra = parseClock(fromInput.value);
      const rb = parseClock(toInput.value);
      if (ra === null || rb === null || rb <= ra) {
        toast("Enter a start before the end, as HH:MM:SS.");
        return;
      }
      this.show([dayStart + ra, dayStart + rb]);
    };
    fromInput.addEventListener("change", change);
    toInput.addEventListener("change", change);
    const camSel = el(
      "select",
      { id: "sel-camera", "aria-label": "Camera to download" },
      cams.map((c, i) => el("option", { value: String(i), selected: i === ci }, c.shortName)),
    );
    camSel.addEventListener("change", () => this.show(this.span, Number(camSel.value)));
    const stream = this.source.stream();
    const links = parts.map((p, k) =>
      el(
        "a",
        {
          class: "button primary",
          href: viewMp4Url(cam.uuid, stream, [p.spec]),
          download: "",
          dataset: { start90k: String(p.start), end90k: String(p.end) },
        },
        `Download${parts.length > 1 ? ` part ${k + 1}` : ""} .mp4 (${formatDuration(p.end - p.start)}, ≈${formatBytes(p.bytes)})`,
      ),
    );
    const clear = el("button", { type: "button" }, "Clear");
    clear.addEventListener("click", () => this.show(null));
    const mayProtect = !!this.session?.top?.permissions?.protectVideo;
    const reason = el("input", {
      type: "text", id: "protect-reason", size: "24", maxlength: "1000",
      placeholder: "Reason", "aria-label": "Reason to protect this span",
    });
    const protectButton = el("button", { type: "button", id: "protect" }, "Protect from deletion");
    protectButton.addEventListener("click", async () => {
      if (!reason.value.trim()) {
        toast("Say why this span must be kept.");
        return;
      }
      try {
        await api.protect(cam.uuid, sel[0], sel[1], reason.value, this.session.csrf);
        toast(`Protected ${formatDuration(sel[1] - sel[0])} of ${cam.shortName}.`);
      } catch (e) {
        toast(`Could not protect: ${e.message}`);
      }
      this.listProtected(cam);
      this.onProtected();
    });
    const exportForm = this.exportForm(cams, cam, stream, sel, parts.length > 0);
    this.protectedList = el("div", { class: "protected", id: "protected" });
    root.replaceChildren(
      el("div", { class: "sel-fields" }, camSel, from, fromInput, to, toInput,
        el("span", { class: "muted", id: "sel-help" }, `${formatDuration(sel[1] - sel[0])} (times as HH:MM:SS.mmm, ${this.tz})`)),
      el(
        "div",
        { class: "sel-actions" },
        links.length ? links : el("span", { class: "muted" }, "No video in this span."),
        parts.length > 1 ? el("span", { class: "muted" }, "The camera reconnected inside this span: one file per session.") : null,
        clear,
      ),
      exportForm,
      mayProtect ? el("div", { class: "sel-actions" }, reason, protectButton) : null,
      this.protectedList,
    );
    this.listProtected(cam);
  }

  /** The export form: a checkbox per camera, the list of spans added to it, and a link
   * to the `.zip` of the ticked cameras over the listed spans (the selected span while
   * none is listed), kept in step with both. No link when no camera is ticked, or when
   * only the selected span of only the camera shown would go and it has no video there
   * (`hasVideo`): the server would answer 404 instead of a file. */
  exportForm(cams, cam, stream, sel, hasVideo) {
    const boxes = cams.map((c) =>
      el("input", { type: "checkbox", value: c.uuid, checked: c === cam,
                    "aria-label": `Export ${c.shortName}` }),
    );
    const spans = this.exportSpans;
    const add = el("button", { type: "button", id: "export-add" }, "Add this span");
    const list = el("ul", { id: "export-spans" });
    // no `download` attribute: the answer says `attachment` with its own file name
    const link = el("a", { class: "button", id: "export-zip" }, "Export .zip");
    const fmt = (t) => formatTime(t, this.tz, "timeMs");
    const sync = () => {
      const uuids = boxes.filter((b) => b.checked).map((b) => b.value);
      const ranges = spans.length ? spans : [sel];
      link.hidden = uuids.length === 0
        || (!spans.length && uuids.length === 1 && uuids[0] === cam.uuid && !hasVideo);
      link.href = exportUrl(uuids, stream, ranges);
      const total = ranges.reduce((n, [a, b]) => n + b - a, 0);
      const many = ranges.length > 1 ? `${ranges.length} spans, ` : "";
      link.textContent = `Export .zip (${uuids.length} camera${uuids.length === 1 ? "" : "s"}, ${many}${formatDuration(total)})`;
      add.disabled = spans.length >= MAX_EXPORT_SPANS
        || spans.some(([a, b]) => a === sel[0] && b === sel[1]);
      list.replaceChildren(...spans.map((span, k) => {
        const remove = el("button", { type: "button", class: "small" }, "Remove");
        remove.addEventListener("click", () => {
          spans.splice(k, 1);
          sync();
        });
        return el(
          "li",
          { dataset: { start90k: String(span[0]), end90k: String(span[1]) } },
          `${fmt(span[0])} → ${fmt(span[1])} (${formatDuration(span[1] - span[0])}) `,
          remove,
        );
      }));
    };
    add.addEventListener("click", () => {
      spans.push([sel[0], sel[1]]);
      spans.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
      sync();
    });
    boxes.forEach((b) => b.addEventListener("change", sync));
    sync();
    return el(
      "fieldset",
      { class: "sel-actions export", id: "export" },
      el("legend", {}, "Export with a signed manifest"),
      ...boxes.map((b, i) => el("label", {}, b, ` ${cams[i].shortName}`)),
      add,
      link,
      list,
    );
  }

  /** Lists the camera's protected spans (with a remove button given `protectVideo`). */
  async listProtected(cam) {
    const list = this.protectedList;
    let ranges;
    try {
      ranges = await api.protectedRanges(cam.uuid);
    } catch (e) {
      list.replaceChildren(el("span", { class: "muted" }, `Protected spans: ${e.message}`));
      return;
    }
    if (list !== this.protectedList) return; // redrawn meanwhile
    const may = !!this.session?.top?.permissions?.protectVideo;
    const fmt = (t) => `${formatTime(t, this.tz)}`;
    const items = ranges.map((r) => {
      const remove = el("button", { type: "button", class: "small" }, "Remove");
      remove.addEventListener("click", async () => {
        try {
          await api.unprotect(cam.uuid, r.id, this.session.csrf);
        } catch (e) {
          toast(`Could not remove: ${e.message}`);
        }
        this.listProtected(cam);
        this.onProtected();
      });
      const until = r.expiresTime90k ? `, until ${fmt(r.expiresTime90k)}` : "";
      return el(
        "li",
        { dataset: { start90k: String(r.startTime90k), end90k: String(r.endTime90k) } },
        `${fmt(r.startTime90k)} → ${fmt(r.endTime90k)} (${formatDuration(r.endTime90k - r.startTime90k)}${until}): ${r.reason} — ${r.createdBy} `,
        may ? remove : null,
      );
    });
    list.replaceChildren(
      items.length
        ? el("div", {}, el("h3", {}, `Protected spans of ${cam.shortName}`), el("ul", {}, items))
        : el("span", { class: "muted" }, `${cam.shortName} has no protected spans.`),
    );
  }

  /** A span's end as text, for keyboards and fingers: a label and its input. */
  timeInput(id, label, value) {
    const input = el("input", {
      type: "text",
      id,
      inputmode: "decimal",
      pattern: "\\d{1,2}:\\d{2}(:\\d{2}(\\.\\d{1,3})?)?",
      size: "12",
      value: formatTime(value, this.tz, "timeMs"),
      "aria-describedby": "sel-help",
    });
    return [el("label", { for: id }, label), input];
  }
}
