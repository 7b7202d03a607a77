// Recordings: the page that puts together a calendar of days with video (`calendar.js`),
// a player (`recordings-player.js`), the day's timeline with one track per camera
// (`recordings-day.js`) and the download panel (`recordings-selection.js`). It holds
// what they share: the stream and day shown and each camera's recordings of that day
// (from `.../recordings`, one row per recording), reloaded every few seconds for today.

import * as api from "./api.js";
import { Calendar, daysWithVideo } from "./calendar.js";
import { el, toast } from "./dom.js";
import { DayCard, trackOf } from "./recordings-day.js";
import { RecordingPlayer } from "./recordings-player.js";
import { SelectionPanel } from "./recordings-selection.js";
import { dayBounds, dayOf, now90k } from "./time.js";

const POLL_MS = 5000;

export function renderRecordings(main, session) {
  const tz = session.tz;
  const params = new URLSearchParams(location.search);
  const state = {
    stream: params.get("stream") === "sub" ? "sub" : "main",
    day: params.get("day"),
    rows: [], // per camera: sorted recordings of the day
  };
  const cameras = () => session.top.cameras;
  const today = () => dayOf(now90k(), tz);
  const rowsOf = (ci) => state.rows[ci] || [];

  // -- the parts -----------------------------------------------------------------------
  const calendar = new Calendar({ onPick: (d) => pickDay(d) });
  const player = new RecordingPlayer({
    tz,
    source: { camera: (ci) => cameras()[ci], rows: rowsOf, stream: () => state.stream },
    onPlayhead: (t, ci) => day.timeline.setPlayhead(t, ci),
    onGone: () => load(), // what is left of the day
  });
  const selection = new SelectionPanel({
    tz,
    session,
    source: {
      cameras,
      rows: rowsOf,
      stream: () => state.stream,
      dayStart: () => day.timeline.day[0],
    },
    onChange: (span) => day.timeline.setSelection(span),
  });
  const day = new DayCard({
    tz,
    stream: state.stream,
    source: { rows: () => state.rows, playhead: () => player.wallTime() },
    onPlay: (ci, t) => player.play(ci, t),
    onSelect: (span, ci) => selection.show(span, ci),
    onStream: (stream) => {
      state.stream = stream;
      syncUrl();
      load();
    },
    below: selection.root,
  });
  main.append(
    el(
      "div",
      { class: "rec-layout" },
      el("aside", { class: "rec-side" }, calendar.root),
      el("div", { class: "rec-main" }, player.root, day.root),
    ),
  );

  // -- the day shown -------------------------------------------------------------------
  /** [start, end) of `d` as the streams report it (or computed, when none has video). */
  function bounds(d) {
    for (const c of cameras()) {
      const info = c.streams[state.stream]?.days?.[d];
      if (info) return [info.startTime90k, info.endTime90k];
    }
    return dayBounds(d, tz);
  }

  function syncUrl() {
    const q = new URLSearchParams({ day: state.day });
    if (state.stream !== "main") q.set("stream", state.stream);
    history.replaceState({}, "", `/recordings?${q}`);
  }

  function pickDay(d) {
    state.day = d;
    syncUrl();
    day.setDay(d, bounds(d));
    calendar.update(daysWithVideo(cameras(), state.stream), d, today());
    selection.show(null);
    load().then(() => day.setZoom(day.zoom));
  }

  let loading = null;
  async function load() {
    const d = state.day;
    const [a, b] = bounds(d);
    const cams = cameras();
    const stream = state.stream;
    const p = Promise.all(
      cams.map((c) =>
        c.streams[stream]
          ? api.recordings(c.uuid, stream, a, b).then(
              (r) => r.recordings.sort((x, y) => x.startTime90k - y.startTime90k),
              (e) => {
                if (e.status === 401) throw e;
                toast(`${c.shortName}: ${e.message}`);
                return [];
              },
            )
          : Promise.resolve([]),
      ),
    );
    loading = p;
    let rows;
    try {
      rows = await p;
    } catch (e) {
      if (e.status === 401) location.assign("/login?next=/recordings");
      return;
    }
    if (loading !== p || d !== state.day || stream !== state.stream) return;
    state.rows = rows;
    day.setTracks(
      cams.map((c, i) => trackOf(c, rows[i], stream, [a, b])),
      rows.reduce((n, r) => n + r.length, 0),
    );
    player.updateNav();
  }

  // -- start, and keep today fresh -----------------------------------------------------
  const days = daysWithVideo(cameras(), state.stream);
  if (!state.day) {
    const t = today();
    state.day = days.has(t) || !days.size ? t : [...days.keys()].sort().at(-1);
  }
  pickDay(state.day);

  const poll = setInterval(() => {
    if (!document.hidden && state.day === today()) load();
  }, POLL_MS);
  const unsubscribe = session.subscribe(() =>
    calendar.update(daysWithVideo(cameras(), state.stream), state.day, today()),
  );
  return () => {
    clearInterval(poll);
    unsubscribe();
    day.destroy();
    player.destroy();
  };
}
