// The timeline on one canvas: a time axis and one track per camera showing recorded
// spans, gaps with why the recording before them ended, each signal tied to the camera
// as a band of its states, a playhead, a hover cursor and a selection. One continuous
// window over all of history, from several weeks down to 10 s: zoomed out past
// DETAIL_MAX_90K it draws the per-day totals of `/api/` instead of recordings, so the
// page only fetches recordings for windows of a few days (`onWindow` hears each window).
//
// Pointer: click or drag on a track plays from the released instant; Shift+drag (or any
// drag while "select" mode is on) selects a span; dragging the axis pans. Wheel zooms
// around the pointer (Shift+wheel or a horizontal wheel pans). Touch: one finger pans,
// two pinch, a tap plays. Keyboard (the canvas is focusable, role "slider"): ←/→ move
// the cursor (PageUp/PageDown in bigger steps, Home/End to the window's edges), ↑/↓ pick
// the camera, Enter plays at the cursor, Space pauses or resumes, J/L step back/forward
// 10 s and K pauses, Shift+←/→ extend a selection from where it started, Escape clears
// it, + and - zoom. While playing, the window follows the playhead (`setPlayhead`).

import { formatDay, formatTime } from "./format.js";
import { dayOf, tzOffsetMs, UNITS_PER_SEC } from "./time.js";

const AXIS_H = 26;
const ROW_H = 34;
const ROW_GAP = 6;
const BADGE_H = 22; // the lane under the tracks for the playhead's and pointer's time
const PAD_R = 10;
const DAY_SEC = 86400;
const TICK_STEPS_SEC = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
  43200, DAY_SEC, 2 * DAY_SEC, 7 * DAY_SEC];
const MIN_SPAN_90K = 10 * UNITS_PER_SEC;
const MAX_SPAN_90K = 35 * DAY_SEC * UNITS_PER_SEC;
/** Wider windows draw per-day totals instead of recordings. */
export const DETAIL_MAX_90K = 3 * DAY_SEC * UNITS_PER_SEC;
const SIGNAL_H = 6;

function css(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

let palette = null;
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => (palette = null));

/** The colours of the style sheet, read once (per colour scheme), not every frame. */
function colors() {
  palette ??= {
    bg: css("--tl-bg", "#11151b"),
    track: css("--tl-gap", "#1d232c"),
    span: css("--tl-span", "#2fb38f"),
    growing: css("--tl-growing", "#59d6b2"),
    text: css("--fg", "#e6e9ee"),
    muted: css("--muted", "#8b95a5"),
    grid: css("--tl-grid", "#2a313c"),
    sel: css("--tl-sel", "rgba(255, 184, 77, 0.28)"),
    selEdge: css("--tl-sel-edge", "#ffb84d"),
    play: css("--tl-play", "#ff5d6c"),
    focus: css("--focus", "#7aa7ff"),
    gapWhy: css("--tl-gap-why", "rgba(255, 93, 108, 0.12)"),
    motion: css("--tl-motion", "#ff9f43"),
    protect: css("--tl-protect", "#5b9dff"),
    redact: css("--tl-redact", "#9aa3ad"),
  };
  return palette;
}

/** The index of the first of `list` (sorted by start, not overlapping) ending after `t`. */
function firstAfter(list, t) {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid].end < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class Timeline {
  /** `onPlay(row, t)`, `onSelect(span)`, `onCursor(t, row)`, `onWindow([a, b])`,
   * `onHover(t, row, x)` (t null: gone) and `onTransport(action)` ("toggle", "back",
   * "forward") hear the person. */
  constructor(canvas, { tz, onPlay, onSelect, onCursor, onWindow, onHover, onTransport }) {
    this.canvas = canvas;
    this.tz = tz;
    this.onPlay = onPlay || (() => {});
    this.onSelect = onSelect || (() => {});
    this.onCursor = onCursor || (() => {});
    this.onWindow = onWindow || (() => {});
    this.onHover = onHover || (() => {});
    this.onTransport = onTransport || (() => {});
    this.rows = [];
    this.extent = [0, 1]; // where the window may go: all of history, and a little more
    this.win = [0, 1];
    this.pointers = new Map(); // pointer id -> x, while down (two: a pinch)
    this.pinch = null;
    this.playhead = null;
    this.playRow = null;
    this.selection = null;
    this.hover = null;
    this.cursor = null;
    this.cursorRow = 0;
    this.selectMode = false;
    this.drag = null;
    this.labelW = 110;
    canvas.timeline = this; // for tests and the console: what is drawn
    canvas.tabIndex = 0;
    canvas.setAttribute("role", "slider");
    canvas.setAttribute("aria-roledescription", "timeline");
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
    canvas.addEventListener("pointercancel", (e) => {
      this.pointers.delete(e.pointerId);
      this.pinch = null;
      this.drag = null;
    });
    canvas.addEventListener("pointerleave", () => {
      this.hover = null;
      this.onHover(null, null, 0);
      this.draw();
    });
    canvas.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    canvas.addEventListener("keydown", (e) => this.key(e));
    canvas.addEventListener("focus", () => this.draw());
    canvas.addEventListener("blur", () => this.draw());
    this.resizer = new ResizeObserver(() => this.draw());
    this.resizer.observe(canvas);
  }

  destroy() {
    this.resizer.disconnect();
  }

  // -- state -------------------------------------------------------------------------

  /** Where the window may go: [lo, hi). */
  setExtent(lo, hi) {
    this.extent = [lo, hi];
  }

  /** rows: [{label, down, spans: [{start, end, growing, endReason}], days: [{start, end,
   * share}], signals: [{start, end, color, name}], motion: [{start, end, level 0-1}],
   * marks: [{start, end}], evidence: [{start, end, kind: "protected" | "redacted",
   * reason}]}]; `days` (per-day totals) are drawn when zoomed out past DETAIL_MAX_90K,
   * `spans` otherwise; `motion` is a band over the recordings, `marks` (search results)
   * ticks along the track's top; `evidence` at every zoom: a protected span as a tint
   * over the track and a line along its bottom, a redacted one hatched (its video is
   * hidden: a gap). */
  setRows(rows) {
    this.rows = rows;
    this.cursorRow = Math.min(this.cursorRow, Math.max(0, rows.length - 1));
    this.draw();
  }

  /** Moves the playhead. A playhead that was in the window and runs past its last
   * twentieth (playback, or live creeping to the right) pages the window on so that it
   * sits a quarter in, unless the user is dragging; one the user panned away from, or a
   * jump, is left where it is. */
  setPlayhead(t, row) {
    const [a, b] = this.win;
    const was = this.playhead;
    this.playhead = t;
    this.playRow = row;
    const span = b - a;
    const onward = t != null && was != null && t >= was && t - was < span / 10; // playing, not a jump
    if (onward && was >= a && was <= b && t > b - span / 20 && !this.drag) {
      this.setWindow(t - span / 4, t - span / 4 + span);
    }
    this.draw();
  }

  setSelection(sel) {
    this.selection = sel;
    this.draw();
  }

  setWindow(start, end) {
    const [lo, hi] = this.extent;
    const span = Math.max(MIN_SPAN_90K, Math.min(end - start, MAX_SPAN_90K, hi - lo));
    start = Math.round(Math.max(lo, Math.min(start, hi - span)));
    if (start === this.win[0] && start + span === this.win[1]) return;
    this.win = [start, Math.round(start + span)];
    this.draw();
    this.onWindow(this.win);
  }

  /** Row `i`'s recorded spans drawn in the window, as [start, end) pairs. */
  visibleSpans(i) {
    const [a, b] = this.win;
    if (!this.detailed()) return [];
    return (this.rows[i]?.spans || []).filter((s) => s.end > a && s.start < b).map((s) => [s.start, s.end]);
  }

  /** Row `i`'s protected and redacted spans drawn in the window, as [start, end, kind]. */
  visibleEvidence(i) {
    const [a, b] = this.win;
    return (this.rows[i]?.evidence || []).filter((s) => s.end > a && s.start < b).map((s) => [s.start, s.end, s.kind]);
  }

  /** Whether the window is narrow enough to draw recordings (not per-day totals). */
  detailed() {
    return this.win[1] - this.win[0] <= DETAIL_MAX_90K;
  }

  zoom(factor, around) {
    const [a, b] = this.win;
    const c = around ?? (this.cursor ?? (a + b) / 2);
    const span = (b - a) * factor;
    const frac = (c - a) / (b - a);
    this.setWindow(c - frac * span, c - frac * span + span);
  }

  pan(fraction) {
    const [a, b] = this.win;
    const d = (b - a) * fraction;
    this.setWindow(a + d, b + d);
  }

  // -- geometry ----------------------------------------------------------------------

  trackLeft() {
    return this.labelW;
  }

  trackWidth() {
    return Math.max(10, this.canvas.clientWidth - this.labelW - PAD_R);
  }

  xOf(t) {
    const [a, b] = this.win;
    return this.trackLeft() + ((t - a) / (b - a)) * this.trackWidth();
  }

  tOf(x) {
    const [a, b] = this.win;
    const f = Math.min(1, Math.max(0, (x - this.trackLeft()) / this.trackWidth()));
    return Math.round(a + f * (b - a));
  }

  rowAt(y) {
    const i = Math.floor((y - AXIS_H) / (ROW_H + ROW_GAP));
    return i >= 0 && i < this.rows.length && y - AXIS_H - i * (ROW_H + ROW_GAP) <= ROW_H ? i : null;
  }

  height() {
    return AXIS_H + Math.max(1, this.rows.length) * (ROW_H + ROW_GAP) + BADGE_H;
  }

  // -- input -------------------------------------------------------------------------

  point(e) {
    const r = this.canvas.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  down(e) {
    if (e.button !== 0) return;
    const { x, y } = this.point(e);
    this.pointers.set(e.pointerId, x);
    if (this.pointers.size === 2) {
      // a second finger: pinch (the first one's drag is over)
      const [x0, x1] = [...this.pointers.values()];
      this.pinch = { d: Math.max(8, Math.abs(x1 - x0)), win: this.win, c: this.tOf((x0 + x1) / 2) };
      this.drag = null;
      this.canvas.setPointerCapture(e.pointerId);
      e.preventDefault();
      return;
    }
    if (x < this.trackLeft()) return;
    const row = this.rowAt(y) ?? (y < AXIS_H ? this.cursorRow : null);
    if (row === null) return;
    this.canvas.setPointerCapture(e.pointerId);
    const t = this.tOf(x);
    // fingers and the axis pan; elsewhere a mouse drag scrubs (or selects)
    const pan = e.pointerType === "touch" || y < AXIS_H;
    this.drag = {
      row, t0: t, x0: x, moved: false, pan, win: this.win,
      select: !pan && (e.shiftKey || this.selectMode),
    };
    this.cursorRow = row;
    this.cursor = t;
    if (this.drag.select) this.selection = null;
    e.preventDefault();
    this.canvas.focus({ preventScroll: true, focusVisible: false });
    this.draw();
  }

  move(e) {
    const { x } = this.point(e);
    if (this.pointers.has(e.pointerId)) this.pointers.set(e.pointerId, x);
    if (this.pinch && this.pointers.size === 2) {
      const [x0, x1] = [...this.pointers.values()];
      const p = this.pinch;
      const factor = p.d / Math.max(8, Math.abs(x1 - x0));
      const span = (p.win[1] - p.win[0]) * factor;
      const frac = ((x0 + x1) / 2 - this.trackLeft()) / this.trackWidth();
      this.setWindow(p.c - frac * span, p.c - frac * span + span);
      return;
    }
    this.hover = x >= this.trackLeft() && e.pointerType !== "touch" ? this.tOf(x) : null;
    const row = this.rowAt(this.point(e).y) ?? this.cursorRow;
    const shown = this.drag && !this.drag.pan ? this.tOf(x) : this.hover;
    this.onHover(shown !== null && this.detailed() ? shown : null, row, x);
    if (this.drag?.pan) {
      if (Math.abs(x - this.drag.x0) > 3) this.drag.moved = true;
      const [a, b] = this.drag.win;
      const d = ((x - this.drag.x0) / this.trackWidth()) * (b - a);
      this.setWindow(a - d, b - d);
      return;
    }
    if (this.drag) {
      if (Math.abs(x - this.drag.x0) > 3) this.drag.moved = true;
      const t = this.tOf(x);
      this.cursor = t;
      if (this.drag.select && this.drag.moved) {
        this.selection = [Math.min(this.drag.t0, t), Math.max(this.drag.t0, t)];
      }
    }
    this.draw();
  }

  up(e) {
    this.pointers.delete(e.pointerId);
    if (this.pinch) {
      if (!this.pointers.size) this.pinch = null;
      return;
    }
    const d = this.drag;
    this.drag = null;
    if (!d) return;
    const t = this.tOf(this.point(e).x);
    if (d.pan && d.moved) {
      this.draw();
      return;
    }
    if (d.select && d.moved) {
      this.selection = [Math.min(d.t0, t), Math.max(d.t0, t)];
      this.onSelect(this.selection);
    } else if (d.select) {
      this.selection = null;
      this.onSelect(null);
    } else if (!this.detailed()) {
      // zoomed out to days: a click zooms into that day
      const half = 12 * 3600 * UNITS_PER_SEC;
      this.setWindow(t - half, t + half);
    } else {
      this.cursor = t;
      this.onPlay(d.row, t);
    }
    this.announce();
    this.draw();
  }

  wheel(e) {
    const sideways = Math.abs(e.deltaX) > Math.abs(e.deltaY);
    if (sideways || e.shiftKey) {
      e.preventDefault();
      this.pan((sideways ? e.deltaX : e.deltaY) / this.trackWidth());
      return;
    }
    if (!e.deltaY) return;
    e.preventDefault();
    // smooth: a trackpad's small deltas zoom a little, a wheel's notch 25 %
    const factor = Math.exp(Math.max(-0.5, Math.min(0.5, e.deltaY * (e.deltaMode ? 0.1 : 0.0022))));
    this.zoom(factor, this.tOf(this.point(e).x));
  }

  key(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const [a, b] = this.win;
    const span = b - a;
    const small = Math.max(UNITS_PER_SEC, Math.round(span / 100));
    let cursor = this.cursor ?? this.playhead ?? a;
    let handled = true;
    const before = cursor;
    switch (e.key) {
      case "ArrowLeft":
        cursor -= small;
        break;
      case "ArrowRight":
        cursor += small;
        break;
      case "PageUp":
        cursor -= span / 10;
        break;
      case "PageDown":
        cursor += span / 10;
        break;
      case "Home":
        cursor = a;
        break;
      case "End":
        cursor = b;
        break;
      case "ArrowUp":
        this.cursorRow = Math.max(0, this.cursorRow - 1);
        break;
      case "ArrowDown":
        this.cursorRow = Math.min(this.rows.length - 1, this.cursorRow + 1);
        break;
      case "Enter":
        this.onPlay(this.cursorRow, Math.round(cursor));
        break;
      case " ":
      case "k":
      case "K":
        this.onTransport("toggle");
        break;
      case "j":
      case "J":
        this.onTransport("back");
        break;
      case "l":
      case "L":
        this.onTransport("forward");
        break;
      case "Escape":
        this.selection = null;
        this.onSelect(null);
        break;
      case "+":
      case "=":
        this.zoom(0.5, cursor);
        break;
      case "-":
        this.zoom(2, cursor);
        break;
      default:
        handled = false;
    }
    if (!handled) return;
    e.preventDefault();
    cursor = Math.round(Math.min(this.extent[1], Math.max(this.extent[0], cursor)));
    if (e.shiftKey && cursor !== before && e.key.startsWith("Arrow")) {
      const anchor = this.selection
        ? Math.abs(this.selection[0] - before) < Math.abs(this.selection[1] - before)
          ? this.selection[1]
          : this.selection[0]
        : before;
      this.selection = [Math.min(anchor, cursor), Math.max(anchor, cursor)];
      this.onSelect(this.selection);
    }
    this.cursor = cursor;
    if (cursor < this.win[0] || cursor > this.win[1]) this.pan((cursor - (a + b) / 2) / span);
    this.announce();
    this.draw();
  }

  announce() {
    const row = this.rows[this.cursorRow];
    const t = this.cursor ?? this.playhead;
    const text = `${row ? row.label : ""} ${t != null ? formatTime(t, this.tz) : ""}`.trim();
    this.canvas.setAttribute("aria-valuetext", text);
    if (t != null) this.onCursor(t, this.cursorRow);
  }

  // -- drawing -----------------------------------------------------------------------

  /** The gap after recording `s` (to `next`, or the window's end): hatched, with why
   * the recording ended when there is room for it. */
  gap(g, col, s, next, y, bottom) {
    const [a, b] = this.win;
    const x0 = this.xOf(Math.max(s.end, a));
    const x1 = this.xOf(Math.min(next ?? b, b));
    g.fillStyle = col.gapWhy;
    g.fillRect(x0, y + 4, Math.max(1, x1 - x0), bottom - y - 4);
    g.fillStyle = col.play;
    g.fillRect(Math.round(x0), y + 2, 2, bottom - y - 2);
    g.font = "11px system-ui, sans-serif";
    const text = s.endReason;
    if (x1 - x0 > g.measureText(text).width + 10) {
      g.fillStyle = col.muted;
      g.textAlign = "left";
      g.fillText(text, x0 + 5, (y + 4 + bottom) / 2);
    }
  }

  /** Protected spans: a tint over the track and a line along its bottom; redacted ones:
   * hatched over the track (there is no video there; the gap says why, as any gap). */
  evidence(g, col, list, y, spanBottom) {
    const [a, b] = this.win;
    for (const ev of list) {
      if (ev.end <= a || ev.start >= b) continue;
      const x0 = this.xOf(Math.max(ev.start, a));
      const w = Math.max(2, this.xOf(Math.min(ev.end, b)) - x0);
      if (ev.kind === "redacted") {
        g.fillStyle = this.hatch(g, col.redact);
        g.fillRect(x0, y + 4, w, spanBottom - y - 4);
      } else {
        g.globalAlpha = 0.22;
        g.fillStyle = col.protect;
        g.fillRect(x0, y + 4, w, spanBottom - y - 4);
        g.globalAlpha = 1;
        g.fillRect(x0, y + ROW_H - 3, w, 3);
      }
    }
  }

  /** Diagonal stripes of `color` (made once per colour). */
  hatch(g, color) {
    if (this.hatchFor !== color) {
      const tile = document.createElement("canvas");
      tile.width = tile.height = 8;
      const t = tile.getContext("2d");
      t.strokeStyle = color;
      t.lineWidth = 2;
      t.beginPath();
      t.moveTo(-2, 10);
      t.lineTo(10, -2);
      t.moveTo(6, 10);
      t.lineTo(10, 6);
      t.moveTo(-2, 2);
      t.lineTo(2, -2);
      t.stroke();
      this.hatchPattern = g.createPattern(tile, "repeat");
      this.hatchFor = color;
    }
    return this.hatchPattern;
  }

  draw() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      this.paint();
    });
  }

  paint() {
    const c = this.canvas;
    this.labelW = c.clientWidth < 520 ? 72 : 110;
    const w = c.clientWidth;
    const h = this.height();
    c.style.height = `${h}px`;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    const col = colors();
    g.clearRect(0, 0, w, h);
    g.fillStyle = col.bg;
    g.fillRect(0, 0, w, h);
    const [a, b] = this.win;
    const left = this.trackLeft();
    const tw = this.trackWidth();

    // axis: ticks aligned to the server's local clock (a midnight is labelled with its day)
    const pxPerSec = tw / ((b - a) / UNITS_PER_SEC);
    const step = TICK_STEPS_SEC.find((st) => st * pxPerSec >= 64) || 7 * DAY_SEC;
    const step90k = step * UNITS_PER_SEC;
    g.font = "12px system-ui, sans-serif";
    g.textBaseline = "middle";
    g.textAlign = "center";
    const off90k = (tzOffsetMs(a / 90, this.tz) * 90) | 0;
    let t = Math.ceil((a + off90k) / step90k) * step90k - off90k;
    for (let n = 0; t <= b && n < 200; t += step90k, n++) {
      const x = Math.round(this.xOf(t)) + 0.5;
      const hm = formatTime(t, this.tz, "hm");
      const midnight = hm === "00:00" && step >= 60;
      g.strokeStyle = midnight ? col.muted : col.grid;
      g.beginPath();
      g.moveTo(x, AXIS_H - 6);
      g.lineTo(x, h);
      g.stroke();
      g.fillStyle = midnight ? col.text : col.muted;
      const text = midnight ? formatDay(dayOf(t, this.tz)).replace(/ \d{4}$/, "") : step < 60 ? formatTime(t, this.tz) : hm;
      const half = g.measureText(text).width / 2;
      g.fillText(text, Math.min(Math.max(x, half + 2), w - half - 2), AXIS_H / 2);
    }

    // tracks
    const detailed = this.detailed();
    const minGapPx = 3;
    this.rows.forEach((row, i) => {
      const y = AXIS_H + i * (ROW_H + ROW_GAP);
      const bandH = row.signals?.length ? SIGNAL_H + 2 : 0;
      const spanBottom = y + ROW_H - 4 - bandH;
      const motionH = row.motion ? 5 : 0;
      g.fillStyle = col.track;
      g.fillRect(left, y, tw, ROW_H);
      g.save();
      g.beginPath();
      g.rect(left, y, tw, ROW_H);
      g.clip();
      if (!detailed) {
        // per-day totals: each day's bar as dark as its share of recorded time
        for (const d of row.days || []) {
          if (d.end < a || d.start > b) continue;
          const x0 = this.xOf(Math.max(d.start, a));
          const x1 = this.xOf(Math.min(d.end, b));
          g.globalAlpha = 0.25 + 0.75 * Math.min(1, d.share);
          g.fillStyle = col.span;
          g.fillRect(x0 + 1, y + 4, Math.max(1, x1 - x0 - 2), spanBottom - y - 4);
        }
        g.globalAlpha = 1;
      }
      const spans = detailed ? row.spans : [];
      const i0 = firstAfter(spans, a);
      let prev = i0 > 0 ? spans[i0 - 1] : null;
      for (let k = i0; k < spans.length && spans[k].start <= b; k++) {
        const s = spans[k];
        const x0 = this.xOf(Math.max(s.start, a));
        const x1 = this.xOf(Math.min(s.end, b));
        if (prev && prev.endReason && this.xOf(s.start) - this.xOf(prev.end) >= minGapPx) {
          this.gap(g, col, prev, s.start, y, spanBottom);
        }
        g.fillStyle = s.growing ? col.growing : col.span;
        g.fillRect(x0, y + 4, Math.max(1, x1 - x0), spanBottom - y - 4);
        if (x1 - x0 > 8 && s.start >= a) {
          // where one recording ends and the next begins (previous/next step there)
          g.fillStyle = col.bg;
          g.globalAlpha = 0.45;
          g.fillRect(Math.round(x0), y + 4, 1, spanBottom - y - 4);
          g.globalAlpha = 1;
        }
        prev = s;
      }
      if (detailed && prev && prev.endReason && prev.end < b) this.gap(g, col, prev, null, y, spanBottom);
      // motion: how much moved, over the recordings
      if (motionH) {
        g.fillStyle = col.motion;
        for (let k = firstAfter(row.motion, a); k < row.motion.length; k++) {
          const m = row.motion[k];
          if (m.start > b) break;
          const x0 = this.xOf(Math.max(m.start, a));
          const x1 = this.xOf(Math.min(m.end, b));
          g.globalAlpha = 0.3 + 0.7 * Math.min(1, m.level);
          g.fillRect(x0, y + 4, Math.max(1, x1 - x0), motionH);
        }
        g.globalAlpha = 1;
      }
      for (const m of row.marks || []) {
        if (m.end < a || m.start > b) continue;
        const x0 = this.xOf(Math.max(m.start, a));
        const x1 = this.xOf(Math.min(m.end, b));
        g.fillStyle = col.selEdge;
        g.fillRect(x0, y, Math.max(2, x1 - x0), 3);
      }
      this.evidence(g, col, row.evidence || [], y, spanBottom);
      // signals: one band of states under the recordings
      for (const sg of detailed ? row.signals || [] : []) {
        if (sg.end < a || sg.start > b) continue;
        const x0 = this.xOf(Math.max(sg.start, a));
        const x1 = this.xOf(Math.min(sg.end, b));
        g.fillStyle = sg.color;
        g.fillRect(x0, spanBottom + 2, Math.max(1, x1 - x0), SIGNAL_H);
      }
      g.restore();
      g.fillStyle = i === this.cursorRow && document.activeElement === this.canvas ? col.focus : col.text;
      g.textAlign = "left";
      g.font = "600 13px system-ui, sans-serif";
      const label = row.label.length > 12 && this.labelW < 100 ? `${row.label.slice(0, 8)}…` : row.label;
      g.fillText(label, 8, y + ROW_H / 2);
      if (row.down) {
        g.fillStyle = col.play;
        g.beginPath();
        g.arc(this.labelW - 12, y + ROW_H / 2, 4, 0, 2 * Math.PI);
        g.fill();
      }
    });
    const tracksTop = AXIS_H;
    const tracksBottom = AXIS_H + this.rows.length * (ROW_H + ROW_GAP) - ROW_GAP;

    // selection
    if (this.selection) {
      const [s0, s1] = this.selection;
      const x0 = this.xOf(Math.max(s0, a));
      const x1 = this.xOf(Math.min(s1, b));
      if (x1 >= left && x0 <= left + tw) {
        g.fillStyle = col.sel;
        g.fillRect(x0, tracksTop - 4, Math.max(1, x1 - x0), tracksBottom - tracksTop + 8);
        g.fillStyle = col.selEdge;
        g.fillRect(x0 - 1, tracksTop - 4, 2, tracksBottom - tracksTop + 8);
        g.fillRect(x1 - 1, tracksTop - 4, 2, tracksBottom - tracksTop + 8);
      }
    }

    // playhead and cursors
    this.badges = []; // [x, y, w, h] of each time label drawn (for tests)
    const vline = (tt, color, width, label) => {
      if (tt == null || tt < a || tt > b) return;
      const x = Math.round(this.xOf(tt));
      g.fillStyle = color;
      g.fillRect(x - width / 2, tracksTop - 4, width, tracksBottom - tracksTop + 8);
      if (label) {
        // under the tracks, in a lane of its own: the axis's labels stay readable
        g.font = "600 12px ui-monospace, monospace";
        const text = formatTime(tt, this.tz);
        const tw2 = g.measureText(text).width + 10;
        const lx = Math.min(Math.max(x - tw2 / 2, left), left + tw - tw2);
        const top = tracksBottom + 4;
        g.fillStyle = color;
        g.fillRect(lx, top, tw2, BADGE_H - 6);
        g.fillStyle = col.bg; // light on dark, dark on light: readable in both schemes
        g.textAlign = "center";
        g.fillText(text, lx + tw2 / 2, top + (BADGE_H - 6) / 2);
        this.badges.push([lx, top, tw2, BADGE_H - 6]);
      }
    };
    if (document.activeElement === this.canvas && this.cursor != null && !this.drag) {
      vline(this.cursor, col.focus, 2, false);
    }
    vline(this.playhead, col.play, 2, !this.hover && !this.drag);
    if (this.hover != null || this.drag) vline(this.drag ? this.cursor : this.hover, col.text, 1, true);

    // what tests and assistive tech read
    const ds = c.dataset;
    ds.start90k = String(a);
    ds.end90k = String(b);
    ds.trackLeft = String(left);
    ds.trackWidth = String(tw);
    ds.rowTop = String(AXIS_H);
    ds.rowHeight = String(ROW_H);
    ds.rowPitch = String(ROW_H + ROW_GAP);
    ds.axisHeight = String(AXIS_H);
    ds.badges = JSON.stringify(this.badges);
    c.setAttribute("aria-valuemin", String(this.extent[0]));
    c.setAttribute("aria-valuemax", String(this.extent[1]));
    c.setAttribute("aria-valuenow", String(Math.round(this.cursor ?? this.playhead ?? a)));
  }
}
