// The timeline card: the title (the day or days shown), the tools (pan, zoom, select
// mode, go to a date and time, timeline or list, stream), the timeline canvas with one
// track per camera (`timeline.js` draws it), the list of recordings (`recordings-list.js`),
// the legend and keyboard help, and whatever the page puts below it (the download
// panel). The canvas comes first in the document, so one Tab from the page's header
// reaches it; CSS shows the tools above it.

import { el, segmented, toast } from "./dom.js";
import { formatDay } from "./format.js";
import { parseClock } from "./recordings-selection.js";
import { Timeline } from "./timeline.js";
import { dayBounds, dayOf, now90k, UNITS_PER_SEC as U } from "./time.js";

const ZOOMS = [
  ["week", "7 d", 7 * 86400],
  ["day", "24 h", 86400],
  ["6h", "6 h", 21600],
  ["1h", "1 h", 3600],
  ["10m", "10 min", 600],
  ["fit", "Fit", null],
];

/** A camera's track: its recordings of `stream` (all loaded), the per-day totals of
 * `/api/`, its signals' states as coloured intervals, its motion ([{start, end, level}]
 * or null: no motion analysis), search results to mark and its protected and redacted
 * spans ([{start, end, kind, reason}]). */
export function trackOf(cam, rows, stream, signals = [], motion = null, marks = [], evidence = []) {
  const s = cam.streams[stream];
  return {
    label: cam.shortName,
    down: ["backoff", "idle"].includes(s?.nvrStatus?.state),
    spans: rows.map((r) => ({
      start: r.startTime90k,
      end: r.endTime90k,
      growing: !!r.growing,
      endReason: r.endReason || null,
    })),
    days: Object.values(s?.days || {}).map((d) => ({
      start: d.startTime90k,
      end: d.endTime90k,
      share: d.totalDuration90k / Math.max(1, d.endTime90k - d.startTime90k),
    })),
    signals,
    motion,
    marks,
    evidence,
  };
}

/** `YYYY-MM-DD[ T]HH:MM[:SS[.mmm]]` as an instant in zone `tz`, or null. */
export function parseDateTime(text, tz) {
  const m = /^\s*(\d{4}-\d{2}-\d{2})[ T](.+)$/.exec(text);
  if (!m) return null;
  const clock = parseClock(m[2]);
  if (clock === null) return null;
  let start;
  try {
    start = dayBounds(m[1], tz)[0];
  } catch (_) {
    return null;
  }
  return Number.isFinite(start) ? start + clock : null;
}

export class DayCard {
  /** `stream`: the stream shown first; `streams`: the stream types some camera has (the
   * main/sub choice only when there is a choice). `source.playhead()`: the wall time playing, or
   * null; `source.fit(day)`: [start, end) of `day`'s recorded video, or null. `onPlay(ci,
   * t)`, `onSelect(span, ci)`, `onStream(stream)`, `onWindow([a, b])`, `onTransport(action)`,
   * `onView("timeline" | "list")`, `onHover(t, ci, x)` hear the person's choices.
   * `overlays`: elements shown over and under the canvas (previews), positioned in its box. */
  constructor({ tz, stream, streams, source, onPlay, onSelect, onStream, onWindow, onTransport, onView, onHover, list, overlays, below }) {
    this.tz = tz;
    this.source = source;
    this.zoom = null; // the preset the window is at, until it moves otherwise
    const canvas = el("canvas", {
      id: "timeline",
      "aria-label": "Timeline",
      "aria-describedby": "timeline-keys",
    });
    this.canvas = canvas;
    const keysHelp = el(
      "p",
      { id: "timeline-keys", class: "sr-only" },
      "Left and Right move the cursor, Page Up and Page Down in bigger steps, Up and Down " +
        "pick the camera, Enter plays from the cursor, Space pauses, J and L step back and " +
        "forward 10 seconds, Shift with Left or Right selects a span to download, Escape " +
        "clears it, plus and minus zoom.",
    );
    this.title = el("h2", { id: "day-title" }, "");
    this.empty = el("p", { class: "no-video muted", role: "status", hidden: true }, "No video on this day.");
    const selectToggle = el("input", { type: "checkbox", id: "select-mode" });
    this.zoomBar = segmented("zoom", "Zoom", ZOOMS.map(([v, l]) => [v, l]), this.zoom, (v) => this.setZoom(v));
    const streamPick =
      streams.length > 1 ? segmented("rec-stream", "Stream", streams.map((s) => [s, s]), stream, onStream) : null;
    const viewPick = segmented(
      "rec-view",
      "View",
      [
        ["timeline", "Timeline"],
        ["list", "List"],
      ],
      "timeline",
      (v) => {
        this.showList(v === "list");
        onView(v);
      },
    );
    const button = (label, text, f) => {
      const b = el("button", { type: "button", class: "icon", "aria-label": label, title: label }, text);
      b.addEventListener("click", f);
      return b;
    };
    const panLeft = button("Earlier", "‹", () => this.timeline.pan(-0.5));
    const panRight = button("Later", "›", () => this.timeline.pan(0.5));
    const zoomIn = button("Zoom in", "+", () => this.timeline.zoom(0.5, source.playhead() ?? undefined));
    const zoomOut = button("Zoom out", "−", () => this.timeline.zoom(2, source.playhead() ?? undefined));
    zoomIn.id = "zoom-in";
    zoomOut.id = "zoom-out";
    const goInput = el("input", {
      type: "text",
      id: "goto-time",
      size: "19",
      placeholder: "YYYY-MM-DD HH:MM:SS",
      "aria-label": `Go to date and time (${tz})`,
      autocomplete: "off",
    });
    const goForm = el("form", { class: "goto", role: "search" }, goInput,
      el("button", { type: "submit" }, "Go"));
    goForm.addEventListener("submit", (e) => {
      e.preventDefault();
      const t = parseDateTime(goInput.value, tz);
      if (t === null) {
        toast("Enter a date and time as YYYY-MM-DD HH:MM:SS.");
        return;
      }
      this.goTo(t);
      onPlay(this.timeline.cursorRow, t);
    });
    this.list = list;
    this.legend = el(
      "div",
      { class: "legend", "aria-hidden": "true" },
      el("span", { class: "sw rec" }), "recorded",
      el("span", { class: "sw growing" }), "being recorded",
      el("span", { class: "sw gap" }), "no video",
      el("span", { class: "sw why" }), "stopped (why)",
      el("span", { class: "sw sel" }), "selected",
      el("span", { class: "sw play" }), "playing",
      el("span", { class: "sw protect" }), "protected",
      el("span", { class: "sw redact" }), "redacted",
    );
    this.root = el(
      "section",
      { class: "timeline-card card", "aria-label": "Timeline" },
      (this.wrap = el("div", { class: "tl-wrap" }, canvas, overlays)),
      this.empty,
      list.root,
      el(
        "div",
        { class: "tl-head" },
        this.title,
        el("div", { class: "tl-tools" }, panLeft, zoomOut, this.zoomBar, zoomIn, panRight,
          el("label", { class: "check" }, selectToggle, "Select"), goForm, viewPick, streamPick),
      ),
      this.legend,
      keysHelp,
      below,
    );
    this.timeline = new Timeline(canvas, {
      tz,
      onPlay,
      onSelect: (span) => onSelect(span, this.timeline.cursorRow),
      onWindow: (win) => {
        this.showTitle(win);
        if (!this.applying) this.markZoom(null);
        onWindow(win);
      },
      onTransport,
      onHover,
    });
    selectToggle.addEventListener("change", () => (this.timeline.selectMode = selectToggle.checked));
  }

  showList(on) {
    this.list.root.hidden = !on;
    this.wrap.hidden = on;
    this.legend.hidden = on;
  }

  showTitle([a, b]) {
    const d0 = dayOf(a, this.tz);
    const d1 = dayOf(b - 1, this.tz);
    this.title.textContent = d0 === d1 ? formatDay(d0) : `${formatDay(d0)} – ${formatDay(d1)}`;
  }

  /** The day the window shows: today while it reaches the live edge (the last hour just
   * after midnight is centred on yesterday, but it is today's view), else the day at its
   * middle. */
  centerDay() {
    const [a, b] = this.timeline.win;
    const now = now90k();
    return dayOf(a <= now && now <= b ? now : Math.round((a + b) / 2), this.tz);
  }

  /** Moves the cursor to `t`, the window (at least as narrow as an hour) around it. */
  goTo(t) {
    const [a, b] = this.timeline.win;
    const span = Math.min(b - a, 3600 * U);
    this.timeline.cursor = t;
    this.timeline.setWindow(t - span / 2, t + span / 2);
  }

  /** One track per camera: `tracks` as `trackOf` makes them. */
  setTracks(tracks, count) {
    this.timeline.setRows(tracks);
    this.empty.hidden = count > 0;
    this.canvas.dataset.loaded = String(Date.now());
    this.canvas.dataset.recordings = String(count);
  }

  /** Checks preset `z` (or none: the window moved some other way, and any preset
   * clicked applies again). */
  markZoom(z) {
    this.zoom = z;
    for (const input of this.zoomBar.querySelectorAll("input")) input.checked = input.value === z;
  }

  setZoom(z) {
    this.applying = true;
    try {
      this.applyZoom(z);
    } finally {
      this.applying = false;
    }
    this.markZoom(z);
  }

  applyZoom(z) {
    const timeline = this.timeline;
    const day = this.centerDay();
    if (z === "fit") {
      const fit = this.source.fit(day);
      if (fit) {
        const [lo, hi] = fit;
        const pad = Math.max((hi - lo) * 0.05, 2 * U);
        timeline.setWindow(lo - pad, hi + pad);
      }
      return;
    }
    const span = ZOOMS.find(([v]) => v === z)[2] * U;
    const [a, b] = dayBounds(day, this.tz);
    if (z === "day") {
      timeline.setWindow(a, b);
      return;
    }
    if (z === "week") {
      timeline.setWindow(b - span, b);
      return;
    }
    const playing = this.source.playhead();
    const [wa, wb] = timeline.win;
    const center = timeline.cursor ?? playing ?? (wa + wb) / 2;
    timeline.setWindow(center - span / 2, center + span / 2);
  }

  destroy() {
    this.timeline.destroy();
  }
}
