// The day card: the day's title, the tools (pan, zoom, select mode, stream), the
// timeline canvas with one track per camera (`timeline.js` draws it), its legend and
// keyboard help, and whatever the page puts below it (the download panel).

import { el, segmented } from "./dom.js";
import { formatDay } from "./format.js";
import { Timeline } from "./timeline.js";
import { now90k, UNITS_PER_SEC as U } from "./time.js";

const ZOOMS = [
  ["day", "24 h", 86400],
  ["6h", "6 h", 21600],
  ["1h", "1 h", 3600],
  ["10m", "10 min", 600],
  ["fit", "Fit", null],
];

/** A camera's track: its recordings of `stream` clipped to the day [a, b). */
export function trackOf(cam, rows, stream, [a, b]) {
  return {
    label: cam.shortName,
    down: ["backoff", "idle"].includes(cam.streams[stream]?.nvrStatus?.state),
    spans: rows.map((r) => ({
      start: Math.max(r.startTime90k, a),
      end: Math.min(r.endTime90k, b),
      growing: !!r.growing,
    })),
  };
}

export class DayCard {
  /** `stream`: the stream shown first; `streams`: the stream types some camera has (the
   * main/sub choice only when there is a choice). `source.rows()`: the recordings shown, per camera;
   * `source.playhead()`: the wall time playing, or null. `onPlay(ci, t)`,
   * `onSelect(span, ci)` and `onStream(stream)` hear the person's choices. */
  constructor({ tz, stream, streams, source, onPlay, onSelect, onStream, below }) {
    this.source = source;
    this.zoom = "day";
    const canvas = el("canvas", {
      id: "timeline",
      "aria-label": "Day timeline",
      "aria-describedby": "timeline-keys",
    });
    this.canvas = canvas;
    const keysHelp = el(
      "p",
      { id: "timeline-keys", class: "sr-only" },
      "Left and Right move the cursor, Page Up and Page Down in bigger steps, Up and Down " +
        "pick the camera, Enter plays from the cursor, Shift with Left or Right selects a " +
        "span to download, Escape clears it, plus and minus zoom.",
    );
    this.title = el("h2", { id: "day-title" }, "");
    this.empty = el("p", { class: "no-video muted", role: "status", hidden: true }, "No video on this day.");
    const selectToggle = el("input", { type: "checkbox", id: "select-mode" });
    const zoomBar = segmented("zoom", "Zoom", ZOOMS.map(([v, l]) => [v, l]), this.zoom, (v) => this.setZoom(v));
    const streamPick =
      streams.length > 1 ? segmented("rec-stream", "Stream", streams.map((s) => [s, s]), stream, onStream) : null;
    const panLeft = el("button", { type: "button", class: "icon", "aria-label": "Earlier" }, "‹");
    const panRight = el("button", { type: "button", class: "icon", "aria-label": "Later" }, "›");
    panLeft.addEventListener("click", () => this.timeline.pan(-0.5));
    panRight.addEventListener("click", () => this.timeline.pan(0.5));
    this.root = el(
      "section",
      { class: "timeline-card card", "aria-label": "Timeline" },
      el(
        "div",
        { class: "tl-head" },
        this.title,
        el("div", { class: "tl-tools" }, panLeft, zoomBar, panRight,
          el("label", { class: "check" }, selectToggle, "Select"), streamPick),
      ),
      this.empty,
      canvas,
      el(
        "div",
        { class: "legend", "aria-hidden": "true" },
        el("span", { class: "sw rec" }), "recorded",
        el("span", { class: "sw growing" }), "being recorded",
        el("span", { class: "sw gap" }), "no video",
        el("span", { class: "sw sel" }), "selected",
        el("span", { class: "sw play" }), "playing",
      ),
      keysHelp,
      below,
    );
    this.timeline = new Timeline(canvas, {
      tz,
      onPlay,
      onSelect: (span) => onSelect(span, this.timeline.cursorRow),
    });
    selectToggle.addEventListener("change", () => (this.timeline.selectMode = selectToggle.checked));
  }

  /** Shows day `day` (a `YYYY-MM-DD` key), which spans [a, b). */
  setDay(day, [a, b]) {
    this.timeline.setDay(a, b);
    this.title.textContent = formatDay(day);
  }

  /** One track per camera: `tracks` as `trackOf` makes them. */
  setTracks(tracks, count) {
    this.timeline.setRows(tracks);
    this.empty.hidden = count > 0;
    this.canvas.dataset.loaded = String(Date.now());
    this.canvas.dataset.recordings = String(count);
  }

  setZoom(z) {
    this.zoom = z;
    const timeline = this.timeline;
    const [a, b] = timeline.day;
    if (z === "fit") {
      const all = this.source.rows().flat();
      if (all.length) {
        const lo = Math.max(a, Math.min(...all.map((r) => r.startTime90k)));
        const hi = Math.min(b, Math.max(...all.map((r) => r.endTime90k)));
        const pad = Math.max((hi - lo) * 0.05, 2 * U);
        timeline.setWindow(lo - pad, hi + pad);
      }
      return;
    }
    const span = ZOOMS.find(([v]) => v === z)[2] * U;
    if (span >= b - a) {
      timeline.setWindow(a, b);
      return;
    }
    const playing = this.source.playhead();
    const center = playing !== null ? playing : Math.min(now90k(), b) - span / 2;
    timeline.setWindow(center - span / 2, center + span / 2);
  }

  destroy() {
    this.timeline.destroy();
  }
}
