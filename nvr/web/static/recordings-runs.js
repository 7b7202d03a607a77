// Which recordings one `view.mp4` can cover, from a camera's rows of `.../recordings`
// (sorted by time, one row per recording): consecutive recordings of one run (one RTSP
// session) with one sample entry. A run's last frame has no duration, so recordings of
// different runs cannot share one file. Pure functions: no DOM, no requests.

import { segmentSpec } from "./api.js";

/** The index of the last row, from `rows[i]` on, that one view.mp4 can play in a row
 * with it, covering less than `limit90k` from its start. */
export function runFrom(rows, i, limit90k = Infinity) {
  let j = i;
  while (
    j + 1 < rows.length &&
    !rows[j].hasTrailingZero &&
    rows[j + 1].openId === rows[j].openId &&
    rows[j + 1].runStartId === rows[j].runStartId &&
    rows[j + 1].startId === (rows[j].endId ?? rows[j].startId) + 1 &&
    rows[j + 1].videoSampleEntryId === rows[j].videoSampleEntryId &&
    rows[j + 1].startTime90k - rows[i].startTime90k < limit90k
  ) {
    j++;
  }
  return j;
}

/** The ids of rows `first` to `last`, as `segmentSpec` takes them. */
export function idRange(first, last) {
  return { startId: first.startId, endId: last.endId ?? last.startId, openId: first.openId };
}

/** `s=` values, instants and estimated sizes of the files that download the span [a, b)
 * of a camera's rows: one file per run. */
export function downloadParts(rows, a, b) {
  const parts = [];
  let i = rows.findIndex((r) => r.endTime90k > a);
  if (i < 0) return parts;
  while (i < rows.length && rows[i].startTime90k < b) {
    const j = runFrom(rows, i);
    let last = i;
    while (last < j && rows[last + 1].startTime90k < b) last++;
    const first = rows[i];
    const rel0 = Math.max(0, a - first.startTime90k);
    const rel1 = Math.min(b, rows[last].endTime90k) - first.startTime90k;
    if (rel1 > rel0) {
      parts.push({
        spec: segmentSpec(idRange(first, rows[last]), rel0, rel1),
        start: first.startTime90k + rel0,
        end: first.startTime90k + rel1,
        // the recordings' bytes, in proportion to the share of their time selected
        bytes:
          (rows.slice(i, last + 1).reduce((n, r) => n + r.sampleFileBytes, 0) * (rel1 - rel0)) /
          Math.max(1, rows[last].endTime90k - first.startTime90k),
      });
    }
    i = last + 1;
  }
  return parts;
}
