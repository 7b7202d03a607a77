// "Search this area": a still frame of a camera (`thumb.jpg` at the cursor) under a
// 16 x 16 grid; the person drags a rectangle (or, by keyboard, moves and sizes it with
// the arrow keys) and searches the timeline's window with nvr's motion search (`cells`:
// the rectangle's cells as 64 hex digits). Results go to the page (a list and marks on
// the timeline). Shown only for cameras whose `/api/` entry has `motion`. The picture
// comes through the page's thumbnail loader (the server makes two pictures at once and
// answers a third 503: the strip and the previews are often making two).

import { thumbUrl } from "./api.js";
import { el, toast } from "./dom.js";

export const GRID = 16;

/** The `cells` parameter for grid cells [c0, c1] x [r0, r1] (inclusive). */
export function cellsHex(c0, r0, c1, r1) {
  const bytes = new Uint8Array((GRID * GRID) / 8);
  for (let r = Math.min(r0, r1); r <= Math.max(r0, r1); r++) {
    for (let c = Math.min(c0, c1); c <= Math.max(c0, c1); c++) {
      const i = r * GRID + c;
      bytes[i >> 3] |= 1 << (i & 7);
    }
  }
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export class RegionSearch {
  /** `onSearch(ci, cells)` runs a search; `onClear()` drops its results; `loader`: the
   * page's ThumbLoader. */
  constructor({ onSearch, onClear, loader }) {
    this.onSearch = onSearch;
    this.onClear = onClear;
    this.loader = loader;
    this.shown = null; // the thumb.jpg URL the picture is (being) loaded from
    this.rect = [4, 4, 11, 11]; // c0, r0, c1, r1
    this.ci = 0;
    this.img = el("img", { alt: "A still frame of the camera", width: "640", height: "360" });
    this.grid = el("canvas", {
      class: "region-grid",
      id: "region-grid",
      tabindex: "0",
      role: "img",
      "aria-label": "Region to search: arrows move it, Shift+arrows size it",
    });
    this.camName = el("strong", {});
    const go = el("button", { type: "button", class: "primary", id: "region-go" }, "Search this area");
    const clear = el("button", { type: "button" }, "Clear results");
    go.addEventListener("click", () => this.onSearch(this.ci, cellsHex(...this.rect)));
    clear.addEventListener("click", () => this.onClear());
    this.status = el("span", { class: "muted", id: "region-status", "aria-live": "polite" });
    this.root = el(
      "details",
      { class: "region-box", id: "region-search", hidden: true },
      el("summary", {}, "Search an area for motion"),
      el("p", { class: "muted" }, "Drag a rectangle on the picture; the search covers the timeline's window."),
      el("div", { class: "region-pic" }, this.img, this.grid),
      el("div", { class: "region-actions" }, this.camName, go, clear, this.status),
    );
    this.listen();
  }

  /** Shows camera `cam` (index `ci`) at `t` on `stream`; null hides the search. */
  show(ci, cam, stream, t) {
    if (!cam) {
      this.root.hidden = true;
      return;
    }
    this.root.hidden = false;
    this.ci = ci;
    this.camName.textContent = cam.shortName;
    const src = thumbUrl(cam.uuid, stream, t, 640);
    this.wanted = src;
    if (this.root.open) this.load(src);
    this.paint();
  }

  load(url) {
    if (this.shown === url) return;
    this.shown = url;
    this.loader.get(url, { urgent: true, pinned: true }).then((v) => {
      if (this.shown !== url) return;
      if (v) this.img.src = v.src;
      else toast("No picture at this moment: move the cursor onto a recording.");
    });
  }

  listen() {
    this.root.addEventListener("toggle", () => {
      if (this.root.open && this.wanted) this.load(this.wanted);
      this.paint();
    });
    const cell = (e) => {
      const r = this.grid.getBoundingClientRect();
      const c = Math.floor(((e.clientX - r.left) / r.width) * GRID);
      const w = Math.floor(((e.clientY - r.top) / r.height) * GRID);
      return [Math.min(GRID - 1, Math.max(0, c)), Math.min(GRID - 1, Math.max(0, w))];
    };
    let from = null;
    this.grid.addEventListener("pointerdown", (e) => {
      this.grid.setPointerCapture(e.pointerId);
      from = cell(e);
      this.rect = [...from, ...from];
      this.paint();
      e.preventDefault();
    });
    this.grid.addEventListener("pointermove", (e) => {
      if (!from) return;
      const to = cell(e);
      this.rect = [Math.min(from[0], to[0]), Math.min(from[1], to[1]), Math.max(from[0], to[0]), Math.max(from[1], to[1])];
      this.paint();
    });
    this.grid.addEventListener("pointerup", () => (from = null));
    this.grid.addEventListener("keydown", (e) => {
      const d = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[e.key];
      if (!d) return;
      e.preventDefault();
      let [c0, r0, c1, r1] = this.rect;
      if (e.shiftKey) {
        c1 = Math.max(c0, Math.min(GRID - 1, c1 + d[0]));
        r1 = Math.max(r0, Math.min(GRID - 1, r1 + d[1]));
      } else {
        const dc = Math.max(-c0, Math.min(GRID - 1 - c1, d[0]));
        const dr = Math.max(-r0, Math.min(GRID - 1 - r1, d[1]));
        [c0, c1, r0, r1] = [c0 + dc, c1 + dc, r0 + dr, r1 + dr];
      }
      this.rect = [c0, r0, c1, r1];
      this.paint();
    });
    new ResizeObserver(() => this.paint()).observe(this.grid);
  }

  paint() {
    const g0 = this.grid;
    const w = g0.clientWidth;
    const h = g0.clientHeight;
    if (!w || !h) return;
    const dpr = window.devicePixelRatio || 1;
    g0.width = Math.round(w * dpr);
    g0.height = Math.round(h * dpr);
    const g = g0.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.strokeStyle = "rgba(255, 255, 255, 0.18)";
    for (let i = 1; i < GRID; i++) {
      g.beginPath();
      g.moveTo((i * w) / GRID, 0);
      g.lineTo((i * w) / GRID, h);
      g.moveTo(0, (i * h) / GRID);
      g.lineTo(w, (i * h) / GRID);
      g.stroke();
    }
    const [c0, r0, c1, r1] = this.rect;
    const x = (c0 * w) / GRID;
    const y = (r0 * h) / GRID;
    const rw = ((c1 - c0 + 1) * w) / GRID;
    const rh = ((r1 - r0 + 1) * h) / GRID;
    g.fillStyle = "rgba(255, 184, 77, 0.25)";
    g.fillRect(x, y, rw, rh);
    g.strokeStyle = "#ffb84d";
    g.lineWidth = 2;
    g.strokeRect(x + 1, y + 1, rw - 2, rh - 2);
    g0.dataset.cells = cellsHex(...this.rect);
  }
}
