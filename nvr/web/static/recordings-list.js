// The list view (as Moonfire's): the recordings of the day shown as rows, per camera,
// with start, end, duration, resolution, size and why the recording ended; each row
// plays (from its start) and downloads. Rows are runs of consecutive recordings cut at
// an hour (`recordings-runs.js`), so a day of short recordings stays a short table.

import { segmentSpec, viewMp4Url } from "./api.js";
import { el } from "./dom.js";
import { formatBytes, formatDuration, formatTime } from "./format.js";
import { idRange, runFrom } from "./recordings-runs.js";
import { UNITS_PER_SEC as U } from "./time.js";

const ROW_LIMIT_90K = 3600 * U;

/** A camera's rows (sorted) inside [a, b) as list entries: one per run cut at an hour. */
export function listEntries(rows, a, b) {
  const out = [];
  let i = rows.findIndex((r) => r.endTime90k > a);
  if (i < 0) return out;
  while (i < rows.length && rows[i].startTime90k < b) {
    const j = runFrom(rows, i, ROW_LIMIT_90K);
    const part = rows.slice(i, j + 1);
    out.push({
      first: rows[i],
      last: rows[j],
      start: rows[i].startTime90k,
      end: rows[j].endTime90k,
      bytes: part.reduce((n, r) => n + r.sampleFileBytes, 0),
      growing: part.some((r) => r.growing),
    });
    i = j + 1;
  }
  return out;
}

export class RecordingList {
  /** `onPlay(ci, t)` plays camera `ci` from `t`. */
  constructor({ tz, onPlay }) {
    this.tz = tz;
    this.onPlay = onPlay;
    this.root = el("div", { class: "rec-list", id: "rec-list", hidden: true });
  }

  /** `cameras`: those of `/api/`; `rows(ci)`: their recordings; `entries`: the answers'
   * `videoSampleEntries`; [a, b): the day. */
  render({ cameras, rows, entries, stream, day: [a, b] }) {
    const tables = cameras.map((c, ci) => {
      const list = listEntries(rows(ci), a, b);
      const body = list.reverse().map((e) => {
        const vse = entries[e.first.videoSampleEntryId];
        const spec = segmentSpec(idRange(e.first, e.last));
        const play = el("button", { type: "button", class: "small", "aria-label": `Play from ${formatTime(e.start, this.tz)}` }, "▶ Play");
        play.addEventListener("click", () => this.onPlay(ci, e.start));
        return el(
          "tr",
          { dataset: { start90k: String(e.start), end90k: String(e.end) } },
          el("td", {}, formatTime(e.start, this.tz)),
          el("td", {}, e.growing ? "recording" : formatTime(e.end, this.tz)),
          el("td", { class: "num" }, formatDuration(e.end - e.start)),
          el("td", {}, vse ? `${vse.width}×${vse.height}` : ""),
          el("td", { class: "num" }, formatBytes(e.bytes)),
          el("td", {}, e.last.endReason || ""),
          el(
            "td",
            { class: "actions" },
            play,
            el("a", { class: "button small", href: viewMp4Url(c.uuid, stream, [spec]), download: "" }, "Download"),
          ),
        );
      });
      return el(
        "div",
        { class: "rec-list-cam" },
        el("h3", {}, c.shortName),
        body.length
          ? el(
              "div",
              { class: "table-scroll" },
              el(
                "table",
                { class: "list" },
                el("thead", {}, el("tr", {}, ["Start", "End", "Duration", "Resolution", "Size", "End reason", ""].map((h) => el("th", { scope: "col" }, h)))),
                el("tbody", {}, body),
              ),
            )
          : el("p", { class: "muted" }, "No recordings this day."),
      );
    });
    this.root.replaceChildren(...tables);
  }
}
