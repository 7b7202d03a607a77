// What the recordings page has loaded of the server's history, one local day at a time:
// each camera's recordings (`.../recordings`, one row per recording) and the signals'
// changes (`/api/signals`) of the days the timeline's window needs, fetched once each
// (today's again when asked to refresh) and merged into one sorted list per camera, so
// the timeline pans across midnight without reloading. Bounded: days far from the window
// are forgotten. No DOM here.

import * as api from "./api.js";
import { dayBounds, dayOf } from "./time.js";

const MAX_DAYS_KEPT = 16; // per camera; the window needs at most DETAIL_MAX_DAYS + 2

/** The `YYYY-MM-DD` days overlapping [a, b), in zone `tz`, with their bounds. */
export function daysIn(a, b, tz) {
  const out = [];
  let d = dayOf(a, tz);
  for (let guard = 0; guard < 400; guard++) {
    const [s, e] = dayBounds(d, tz);
    out.push([d, s, e]);
    if (e >= b) break;
    d = dayOf(e, tz);
  }
  return out;
}

/** Rows of several days' answers as one list sorted by time, each recording once (a
 * recording over midnight is in both days' answers). */
export function mergeRows(lists) {
  const seen = new Set();
  const out = [];
  for (const rows of lists) {
    for (const r of rows) {
      const k = `${r.openId}/${r.startId}`;
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(r);
    }
  }
  return out.sort((x, y) => x.startTime90k - y.startTime90k);
}

/** Each signal's states as intervals [{signalId, start, end, state}] from the parallel
 * arrays of `/api/signals` answers (each starting with the states at its start), up to
 * `until` for the last change. */
export function signalIntervals(answers, until) {
  const changes = new Map(); // signal id -> Map time -> state
  for (const a of answers) {
    a.signalIds.forEach((id, i) => {
      if (!changes.has(id)) changes.set(id, new Map());
      changes.get(id).set(a.times90k[i], a.states[i]);
    });
  }
  const out = [];
  for (const [signalId, m] of changes) {
    const times = [...m.keys()].sort((x, y) => x - y);
    times.forEach((t, i) => {
      const state = m.get(t);
      const end = i + 1 < times.length ? times[i + 1] : Math.max(t, until);
      if (state !== 0 && end > t) out.push({ signalId, start: t, end, state });
    });
  }
  return out;
}

export class HistoryStore {
  /** `cameras()`: the cameras of `/api/`; `tz`: the server's zone; `onError(camera, e)`
   * hears a failed fetch (a 401 is rethrown to the caller of `load`). */
  constructor({ cameras, tz, onError }) {
    this.cameras = cameras;
    this.tz = tz;
    this.onError = onError;
    this.stream = "main";
    this.days = new Map(); // `${ci}/${day}` -> {rows, entries} (answers) or a promise
    this.signalDays = new Map(); // day -> answer of /api/signals
    this.motionDays = new Map(); // `${ci}/${day}` -> motion spans (whole picture)
    this.merged = new Map(); // ci -> rows, until the next change
    this.entries = {}; // videoSampleEntries of every answer
    this.version = 0;
  }

  setStream(stream) {
    if (stream === this.stream) return;
    this.stream = stream;
    this.days.clear();
    this.merged.clear();
    this.version++;
  }

  /** Camera `ci`'s loaded recordings, sorted by time. */
  rows(ci) {
    let r = this.merged.get(ci);
    if (!r) {
      const lists = [];
      for (const [k, v] of this.days) if (k.startsWith(`${ci}/`) && v.rows) lists.push(v.rows);
      r = mergeRows(lists);
      this.merged.set(ci, r);
    }
    return r;
  }

  /** Camera `ci`'s recordings of `day`, once loaded (else null). */
  dayRows(ci, day) {
    return this.days.get(`${ci}/${day}`)?.rows ?? null;
  }

  /** Camera `ci`'s loaded motion spans (whole picture), sorted by time. */
  motion(ci) {
    const seen = new Set();
    const out = [];
    for (const [k, spans] of this.motionDays) {
      if (!k.startsWith(`${ci}/`)) continue;
      for (const s of spans) {
        if (seen.has(s.startTime90k)) continue;
        seen.add(s.startTime90k);
        out.push(s);
      }
    }
    return out.sort((x, y) => x.startTime90k - y.startTime90k);
  }

  /** Every loaded signal change, as intervals up to `until`. */
  signals(until) {
    return signalIntervals([...this.signalDays.values()], until);
  }

  /** Fetches what [a, b) needs that is not loaded (and `refresh` days again). Resolves
   * to whether anything changed. */
  async load(a, b, { refresh = [], signals = false } = {}) {
    const want = daysIn(a, b, this.tz);
    const stream = this.stream;
    const jobs = [];
    this.cameras().forEach((c, ci) => {
      if (!c.streams[stream]) return;
      for (const [d, s, e] of want) {
        const k = `${ci}/${d}`;
        const have = this.days.get(k);
        if (have && !refresh.includes(d)) continue;
        if (have?.loading) continue;
        const job = api.recordings(c.uuid, stream, s, e).then(
          (r) => {
            if (this.stream !== stream) return false;
            this.days.set(k, { rows: r.recordings });
            Object.assign(this.entries, r.videoSampleEntries || {});
            this.merged.delete(ci);
            return true;
          },
          (err) => {
            if (!have) this.days.delete(k);
            if (err.status === 401) throw err;
            this.onError(c, err);
            return false;
          },
        );
        if (!have) this.days.set(k, { loading: true });
        jobs.push(job);
      }
    });
    // motion (nvr's extension), for the cameras `/api/` says have it
    this.cameras().forEach((c, ci) => {
      if (!c.motion) return;
      for (const [d, s, e] of want) {
        const k = `${ci}/${d}`;
        if (this.motionDays.has(k) && !refresh.includes(d)) continue;
        if (!this.motionDays.has(k)) this.motionDays.set(k, []);
        jobs.push(
          api.motionSpans(c.uuid, { startTime90k: s, endTime90k: e, limit: 1000 }).then(
            (r) => {
              this.motionDays.set(k, r.spans);
              return true;
            },
            (err) => {
              if (err.status === 401) throw err;
              return false; // no motion search here (404), or not now: no band
            },
          ),
        );
      }
    });
    if (signals) {
      for (const [d, s, e] of want) {
        if (this.signalDays.has(d) && !refresh.includes(d)) continue;
        jobs.push(
          api.signals(s, e).then(
            (r) => {
              this.signalDays.set(d, r);
              return true;
            },
            (err) => {
              if (err.status === 401) throw err;
              return false;
            },
          ),
        );
      }
    }
    const changed = (await Promise.all(jobs)).some(Boolean);
    this.forget(want.map(([d]) => d));
    if (changed) this.version++;
    return changed;
  }

  /** Keeps memory bounded: past MAX_DAYS_KEPT days a camera, the ones not wanted go. */
  forget(wanted) {
    const perCam = new Map();
    for (const k of this.days.keys()) {
      const ci = k.split("/")[0];
      perCam.set(ci, (perCam.get(ci) || 0) + 1);
    }
    for (const [ci, n] of perCam) {
      if (n <= MAX_DAYS_KEPT) continue;
      for (const k of [...this.days.keys()]) {
        const [c, d] = k.split("/");
        if (c === ci && !wanted.includes(d) && !this.days.get(k).loading) this.days.delete(k);
      }
      this.merged.delete(Number(ci));
    }
    if (this.motionDays.size > MAX_DAYS_KEPT * Math.max(1, perCam.size)) {
      for (const k of [...this.motionDays.keys()]) if (!wanted.includes(k.split("/")[1])) this.motionDays.delete(k);
    }
    if (this.signalDays.size > MAX_DAYS_KEPT) {
      for (const d of [...this.signalDays.keys()]) if (!wanted.includes(d)) this.signalDays.delete(d);
    }
  }
}
