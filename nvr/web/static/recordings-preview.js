// Pictures of recorded moments on the timeline, from `.../thumb.jpg`: the preview that
// follows the pointer (the frame showing at that instant, with its time) and the strip
// of key-frame thumbnails along a zoomed-in window. One loader feeds both: at most two
// requests at once (the server decodes at most two pictures at once and answers a third
// 503 with Retry-After), the newest wish first, answers kept as object URLs (bounded).

import { thumbUrl } from "./api.js";
import { el } from "./dom.js";
import { formatTime } from "./format.js";
import { UNITS_PER_SEC as U } from "./time.js";

const KEEP = 240; // pictures kept
const STRIP_W = 96; // px per thumbnail of the strip
const STRIP_MAX_90K = 6 * 3600 * U; // wider windows have no strip

export class ThumbLoader {
  constructor({ limit = 2 } = {}) {
    this.limit = limit;
    this.running = 0;
    this.queue = []; // [{url, resolve}], newest last
    this.cache = new Map(); // url -> {src, frameTime90k} or null (no picture there)
    this.waiting = new Map(); // url -> promise
  }

  /** The picture at `url` as {src, frameTime90k}, or null; `urgent` ones go first;
   * `pinned` ones are never pruned. */
  get(url, { urgent = false, pinned = false } = {}) {
    if (this.cache.has(url)) {
      const v = this.cache.get(url);
      this.cache.delete(url); // most recently used last
      this.cache.set(url, v);
      return Promise.resolve(v);
    }
    let p = this.waiting.get(url);
    if (!p) {
      p = new Promise((resolve) => {
        const job = { url, resolve, pinned };
        if (urgent) this.queue.push(job);
        else this.queue.unshift(job);
      });
      this.waiting.set(url, p);
      this.pump();
    }
    return p;
  }

  /** Forgets wishes not yet asked for that `keep(url)` no longer wants. */
  prune(keep) {
    this.queue = this.queue.filter((j) => {
      if (j.pinned || keep(j.url)) return true;
      this.waiting.delete(j.url);
      j.resolve(null);
      return false;
    });
  }

  pump() {
    while (this.running < this.limit && this.queue.length) {
      const job = this.queue.pop();
      this.running++;
      this.fetch(job.url).then((v) => {
        this.running--;
        if (v === undefined) {
          // busy: again after a moment, behind newer wishes
          setTimeout(() => {
            this.queue.unshift(job);
            this.pump();
          }, 250);
        } else {
          this.waiting.delete(job.url);
          this.store(job.url, v);
          job.resolve(v);
        }
        this.pump();
      });
    }
  }

  /** {src, frameTime90k}, null (no picture), or undefined (busy: try again). */
  async fetch(url) {
    try {
      const resp = await fetch(url, { credentials: "same-origin" });
      if (resp.status === 503) return undefined;
      if (!resp.ok) return null;
      const frameTime90k = Number(resp.headers.get("X-Frame-Time90k"));
      return { src: URL.createObjectURL(await resp.blob()), frameTime90k };
    } catch (_) {
      return null;
    }
  }

  store(url, v) {
    this.cache.set(url, v);
    while (this.cache.size > KEEP) {
      const [old, ov] = this.cache.entries().next().value;
      this.cache.delete(old);
      if (ov) URL.revokeObjectURL(ov.src);
    }
  }

  destroy() {
    for (const v of this.cache.values()) if (v) URL.revokeObjectURL(v.src);
    this.cache.clear();
    this.queue = [];
  }
}

/** The picture under the pointer: the frame showing at the hovered instant. */
export class HoverPreview {
  constructor({ tz, loader }) {
    this.tz = tz;
    this.loader = loader;
    this.img = el("img", { alt: "", width: "192", height: "108" });
    this.time = el("span", { class: "tl-preview-time" });
    this.root = el("div", { class: "tl-preview", id: "tl-preview", hidden: true, "aria-hidden": "true" }, this.img, this.time);
    this.want = null;
  }

  /** Shows camera `cam`'s picture at `t` above x (px in the wrap), or hides (t null). */
  show(t, x, cam, stream) {
    if (t === null || !cam) {
      this.want = null;
      this.root.hidden = true;
      return;
    }
    const url = thumbUrl(cam.uuid, stream, t, 192);
    if (url !== this.want) delete this.root.dataset.frameTime90k; // until its picture is in
    this.want = url;
    this.root.hidden = false;
    const w = this.root.offsetWidth || 200;
    const parent = this.root.parentElement?.clientWidth || w;
    this.root.style.left = `${Math.round(Math.min(Math.max(0, x - w / 2), parent - w))}px`;
    this.time.textContent = formatTime(t, this.tz, "timeMs");
    this.root.dataset.time90k = String(t);
    this.loader.prune((u) => u.includes("keyFrame=true") || u === url);
    this.loader.get(url, { urgent: true }).then((v) => {
      if (this.want !== url) return;
      if (!v) {
        this.img.removeAttribute("src");
        return;
      }
      this.img.src = v.src;
      this.root.dataset.frameTime90k = String(v.frameTime90k);
    });
  }
}

/** Key-frame thumbnails along the window, at times on a grid that pans with it (so a
 * pan reuses the pictures it has). Clicking one plays from its time. */
export class ThumbStrip {
  constructor({ loader, onPlay }) {
    this.loader = loader;
    this.onPlay = onPlay;
    this.root = el("div", { class: "tl-strip", id: "tl-strip", hidden: true, "aria-hidden": "true" });
    this.root.addEventListener("click", (e) => {
      const img = e.target.closest("img[data-time90k]");
      if (img) this.onPlay(Number(img.dataset.time90k));
    });
  }

  /** `win` [a, b); `left`, `width`: the track's px within the wrap; `spans`: the camera's
   * recorded [start, end) pairs; `cam`/`stream`: whose pictures. */
  update({ win: [a, b], left, width, spans, cam, stream }) {
    if (!cam || b - a > STRIP_MAX_90K || !spans.length) {
      this.root.hidden = true;
      this.root.replaceChildren();
      return;
    }
    this.root.hidden = false;
    const n = Math.max(1, Math.floor(width / STRIP_W));
    const step = Math.max(U, Math.round((b - a) / n / U) * U);
    const first = Math.ceil(a / step) * step;
    const imgs = [];
    const wanted = new Set();
    for (let t = first + step / 2; t < b; t += step) {
      if (!spans.some(([s, e]) => s <= t && t < e)) continue;
      const url = thumbUrl(cam.uuid, stream, t, STRIP_W, true);
      wanted.add(url);
      const x = left + ((t - a) / (b - a)) * width - STRIP_W / 2;
      const img = el("img", { alt: "", width: String(STRIP_W), height: "54", dataset: { time90k: String(t) } });
      img.style.left = `${Math.round(Math.max(left, Math.min(left + width - STRIP_W, x)))}px`;
      this.loader.get(url).then((v) => {
        if (v) img.src = v.src;
        else img.hidden = true; // no picture there (or none to be had): no black box
      });
      imgs.push(img);
    }
    this.loader.prune((u) => !u.includes("keyFrame=true") || wanted.has(u));
    this.root.replaceChildren(...imgs);
  }
}
