// A day timeline on one canvas: a time axis and one track per camera showing recorded
// spans and gaps, a playhead, a hover cursor and a selection.
//
// Pointer: click or drag on a track plays from the released instant; Shift+drag (or any
// drag while "select" mode is on) selects a span. Wheel zooms around the pointer.
// Keyboard (the canvas is focusable, role "slider"): ←/→ move the cursor (PageUp/PageDown
// in bigger steps, Home/End to the window's edges), ↑/↓ pick the camera, Enter or Space
// plays at the cursor, Shift+←/→ extend a selection from where it started, Escape clears
// it, + and - zoom.

import { formatTime } from "./format.js";
import { tzOffsetMs, UNITS_PER_SEC } from "./time.js";

const AXIS_H = 26;
const ROW_H = 34;
const ROW_GAP = 6;
const BADGE_H = 22; // the lane under the tracks for the playhead's and pointer's time
const PAD_R = 10;
const TICK_STEPS_SEC = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600];
const MIN_SPAN_90K = 10 * UNITS_PER_SEC;

function css(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

export class Timeline {
  constructor(canvas, { tz, onPlay, onSelect, onCursor }) {
    this.canvas = canvas;
    this.tz = tz;
    this.onPlay = onPlay || (() => {});
    this.onSelect = onSelect || (() => {});
    this.onCursor = onCursor || (() => {});
    this.rows = [];
    this.day = [0, 1];
    this.win = [0, 1];
    this.playhead = null;
    this.playRow = null;
    this.selection = null;
    this.hover = null;
    this.cursor = null;
    this.cursorRow = 0;
    this.selectMode = false;
    this.drag = null;
    this.labelW = 110;
    canvas.tabIndex = 0;
    canvas.setAttribute("role", "slider");
    canvas.setAttribute("aria-roledescription", "timeline");
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
    canvas.addEventListener("pointercancel", () => (this.drag = null));
    canvas.addEventListener("pointerleave", () => {
      this.hover = null;
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

  setDay(start, end) {
    this.day = [start, end];
    this.win = [start, end];
    this.cursor = null;
    this.selection = null;
    this.draw();
  }

  /** rows: [{label, spans: [{start, end, growing}]}] */
  setRows(rows) {
    this.rows = rows;
    this.cursorRow = Math.min(this.cursorRow, Math.max(0, rows.length - 1));
    this.draw();
  }

  setPlayhead(t, row) {
    this.playhead = t;
    this.playRow = row;
    this.draw();
  }

  setSelection(sel) {
    this.selection = sel;
    this.draw();
  }

  setWindow(start, end) {
    let span = Math.max(MIN_SPAN_90K, Math.min(end - start, this.day[1] - this.day[0]));
    start = Math.max(this.day[0], Math.min(start, this.day[1] - span));
    this.win = [start, start + span];
    this.draw();
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
    if (x < this.trackLeft()) return;
    const row = this.rowAt(y) ?? (y < AXIS_H ? this.cursorRow : null);
    if (row === null) return;
    this.canvas.setPointerCapture(e.pointerId);
    const t = this.tOf(x);
    this.drag = { row, t0: t, select: e.shiftKey || this.selectMode, moved: false, x0: x };
    this.cursorRow = row;
    this.cursor = t;
    if (this.drag.select) this.selection = null;
    e.preventDefault();
    this.canvas.focus({ preventScroll: true, focusVisible: false });
    this.draw();
  }

  move(e) {
    const { x } = this.point(e);
    this.hover = x >= this.trackLeft() ? this.tOf(x) : null;
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
    const d = this.drag;
    this.drag = null;
    if (!d) return;
    const t = this.tOf(this.point(e).x);
    if (d.select && d.moved) {
      this.selection = [Math.min(d.t0, t), Math.max(d.t0, t)];
      this.onSelect(this.selection);
    } else if (d.select) {
      this.selection = null;
      this.onSelect(null);
    } else {
      this.cursor = t;
      this.onPlay(d.row, t);
    }
    this.announce();
    this.draw();
  }

  wheel(e) {
    if (!e.deltaY || Math.abs(e.deltaX) > Math.abs(e.deltaY)) return;
    e.preventDefault();
    this.zoom(e.deltaY > 0 ? 1.25 : 0.8, this.tOf(this.point(e).x));
  }

  key(e) {
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
      case " ":
        this.onPlay(this.cursorRow, Math.round(cursor));
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
    cursor = Math.round(Math.min(this.day[1], Math.max(this.day[0], cursor)));
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
    const col = {
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
    };
    g.clearRect(0, 0, w, h);
    g.fillStyle = col.bg;
    g.fillRect(0, 0, w, h);
    const [a, b] = this.win;
    const left = this.trackLeft();
    const tw = this.trackWidth();

    // axis: ticks aligned to the server's local clock
    const pxPerSec = tw / ((b - a) / UNITS_PER_SEC);
    const step = TICK_STEPS_SEC.find((s) => s * pxPerSec >= 64) || 21600;
    const step90k = step * UNITS_PER_SEC;
    const off90k = (tzOffsetMs(a / 90, this.tz) * 90) | 0;
    let t = Math.ceil((a + off90k) / step90k) * step90k - off90k;
    g.font = "12px system-ui, sans-serif";
    g.textBaseline = "middle";
    g.textAlign = "center";
    for (; t <= b; t += step90k) {
      const x = Math.round(this.xOf(t)) + 0.5;
      g.strokeStyle = col.grid;
      g.beginPath();
      g.moveTo(x, AXIS_H - 6);
      g.lineTo(x, h);
      g.stroke();
      g.fillStyle = col.muted;
      const text = formatTime(t, this.tz, step < 60 ? "time" : "hm");
      const half = g.measureText(text).width / 2;
      g.fillText(text, Math.min(Math.max(x, half + 2), w - half - 2), AXIS_H / 2);
    }

    // tracks
    this.rows.forEach((row, i) => {
      const y = AXIS_H + i * (ROW_H + ROW_GAP);
      g.fillStyle = col.track;
      g.fillRect(left, y, tw, ROW_H);
      g.save();
      g.beginPath();
      g.rect(left, y, tw, ROW_H);
      g.clip();
      for (const s of row.spans) {
        if (s.end < a || s.start > b) continue;
        const x0 = this.xOf(Math.max(s.start, a));
        const x1 = this.xOf(Math.min(s.end, b));
        g.fillStyle = s.growing ? col.growing : col.span;
        g.fillRect(x0, y + 4, Math.max(1, x1 - x0), ROW_H - 8);
        if (x1 - x0 > 8 && s.start >= a) {
          // where one recording ends and the next begins (previous/next step there)
          g.fillStyle = col.bg;
          g.globalAlpha = 0.45;
          g.fillRect(Math.round(x0), y + 4, 1, ROW_H - 8);
          g.globalAlpha = 1;
        }
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
    c.setAttribute("aria-valuemin", String(this.day[0]));
    c.setAttribute("aria-valuemax", String(this.day[1]));
    c.setAttribute("aria-valuenow", String(Math.round(this.cursor ?? this.playhead ?? a)));
  }
}
