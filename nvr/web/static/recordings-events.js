// The events of the timeline's window as a list, newest first: motion spans (nvr's
// motion search over the whole picture) and signal changes, each with a thumbnail, the
// camera, start, duration and peak; a click plays it. Also the results of a region
// search, in the same shape. Only the first LIMIT are listed.

import { thumbUrl } from "./api.js";
import { el } from "./dom.js";
import { formatDuration, formatTime } from "./format.js";

const LIMIT = 100;

export class EventList {
  /** `loader`: a ThumbLoader; `onPlay(ci, t)` plays one. */
  constructor({ tz, loader, onPlay, id, title }) {
    this.tz = tz;
    this.loader = loader;
    this.onPlay = onPlay;
    this.title = title;
    this.count = el("span", { class: "muted" });
    this.body = el("ol", { class: "events" });
    this.root = el("details", { class: "events-box", id, hidden: true },
      el("summary", {}, title, " ", this.count), this.body);
    // filled (thumbnails and all) only while open
    this.root.addEventListener("toggle", () => {
      if (this.root.open && this.pending) this.fill(this.pending);
    });
  }

  /** `events`: [{ci, camera, stream, start, end, peak, label}] (any order); null hides. */
  render(events) {
    if (!events) {
      this.root.hidden = true;
      return;
    }
    this.root.hidden = false;
    const sorted = [...events].sort((x, y) => y.start - x.start).slice(0, LIMIT);
    this.count.textContent = `(${events.length > LIMIT ? `${LIMIT} of ${events.length}` : events.length})`;
    if (this.root.open) this.fill(sorted);
    else this.pending = sorted;
  }

  fill(sorted) {
    this.pending = null;
    this.body.replaceChildren(
      ...sorted.map((e) => {
        const img = el("img", { alt: "", width: "80", height: "45" });
        if (e.camera) {
          this.loader.get(thumbUrl(e.camera.uuid, e.stream, e.start, 80, true)).then((v) => {
            if (v) img.src = v.src;
          });
        }
        const b = el(
          "button",
          { type: "button", class: "event", dataset: { start90k: String(e.start), end90k: String(e.end) } },
          img,
          el("span", { class: "ev-cam" }, e.camera?.shortName ?? ""),
          el("span", { class: "ev-what" }, e.label),
          el("span", { class: "ev-time" }, formatTime(e.start, this.tz)),
          el("span", { class: "ev-dur" }, formatDuration(e.end - e.start)),
          el("span", { class: "ev-peak" }, e.peak != null ? `peak ${Math.round(e.peak * 100)} %` : ""),
        );
        b.addEventListener("click", () => this.onPlay(e.ci, e.start));
        return el("li", {}, b);
      }),
    );
    if (!sorted.length) this.body.append(el("li", { class: "muted" }, "Nothing in this window."));
  }
}
