// Recordings: the page that puts together a calendar of days with video (`calendar.js`),
// a player (`recordings-player.js`), one continuous timeline with a track per camera
// (`recordings-day.js`), the list view (`recordings-list.js`) and the download panel
// (`recordings-selection.js`). What was loaded of the history, day by day as the
// timeline's window needs it, is in `recordings-data.js`; today's is fetched again
// every few seconds while the window shows it. The URL's `day` follows the window. Each
// camera's protected spans (and, for `redactVideo`, its redactions) are fetched whole
// when the page opens and again after a protection is added or removed here.

import { Calendar, daysWithVideo } from "./calendar.js";
import { el, toast } from "./dom.js";
import * as api from "./api.js";
import { HistoryStore } from "./recordings-data.js";
import { EventList } from "./recordings-events.js";
import { RegionSearch } from "./recordings-search.js";
import { HoverPreview, ThumbLoader, ThumbStrip } from "./recordings-preview.js";
import { DayCard, trackOf } from "./recordings-day.js";
import { RecordingList } from "./recordings-list.js";
import { RecordingPlayer } from "./recordings-player.js";
import { SelectionPanel } from "./recordings-selection.js";
import { DETAIL_MAX_90K } from "./timeline.js";
import { dayBounds, dayOf, now90k, UNITS_PER_SEC as U } from "./time.js";

const POLL_MS = 5000;
const LOAD_DELAY_MS = 80; // a wheel or pinch moves the window many times a second

export function renderRecordings(main, session) {
  const tz = session.tz;
  const params = new URLSearchParams(location.search);
  const state = {
    stream: params.get("stream") === "sub" ? "sub" : "main",
    day: params.get("day"),
    view: "timeline",
  };
  const cameras = () => session.top.cameras;
  const today = () => dayOf(now90k(), tz);
  const store = new HistoryStore({
    cameras,
    tz,
    onError: (c, e) => toast(`${c.shortName}: ${e.message}`),
  });
  store.setStream(state.stream);

  // -- the parts -----------------------------------------------------------------------
  const calendar = new Calendar({ onPick: (d) => pickDay(d) });
  const player = new RecordingPlayer({
    tz,
    source: {
      camera: (ci) => cameras()[ci],
      rows: (ci) => store.rows(ci),
      stream: () => state.stream,
      entries: () => store.entries,
    },
    onPlayhead: (t, ci) => card.timeline.setPlayhead(t, ci),
    onGone: () => load({ refresh: true }),
  });
  const selection = new SelectionPanel({
    tz,
    session,
    source: {
      cameras,
      rows: (ci) => store.rows(ci),
      stream: () => state.stream,
      dayStart: () => dayBounds(card.centerDay(), tz)[0],
    },
    onChange: (span) => card.timeline.setSelection(span),
    onProtected: () => loadEvidence(),
  });
  const list = new RecordingList({ tz, onPlay: (ci, t) => player.play(ci, t) });
  const thumbs = new ThumbLoader();
  const preview = new HoverPreview({ tz, loader: thumbs });
  const strip = new ThumbStrip({ loader: thumbs, onPlay: (t) => player.play(card.timeline.cursorRow, t) });
  const playEvent = (ci, t) => player.play(ci, t);
  const events = new EventList({ tz, loader: thumbs, onPlay: playEvent, id: "events", title: "Events" });
  const results = new EventList({ tz, loader: thumbs, onPlay: playEvent, id: "search-results", title: "Search results" });
  const marks = new Map(); // ci -> spans found by the region search
  const evidence = new Map(); // ci -> [{start, end, kind: "protected" | "redacted", reason}]
  const search = new RegionSearch({
    loader: thumbs,
    onSearch: (ci, cells) => searchRegion(ci, cells),
    onClear: () => {
      marks.clear();
      results.render(null);
      showTracks();
    },
  });
  const card = new DayCard({
    tz,
    stream: state.stream,
    streams: ["main", "sub"].filter((t) => cameras().some((c) => c.streams[t])),
    source: { playhead: () => player.wallTime(), fit: (d) => recordedSpan(d) },
    onPlay: (ci, t) => player.play(ci, t),
    onSelect: (span, ci) => selection.show(span, ci),
    onStream: (stream) => {
      state.stream = stream;
      store.setStream(stream);
      syncUrl();
      load();
    },
    onWindow: () => scheduleLoad(),
    onTransport: (action) => {
      if (!player.transport(action)) {
        const tl = card.timeline;
        player.play(tl.cursorRow, Math.round(tl.cursor ?? (tl.win[0] + tl.win[1]) / 2));
      }
    },
    onView: (v) => {
      state.view = v;
      showTracks();
    },
    onHover: (t, ci, x) => {
      const rows = t === null ? [] : store.rows(ci);
      const inside = rows.some((r) => r.startTime90k <= t && t < r.endTime90k);
      preview.show(inside ? t : null, x, cameras()[ci], state.stream);
    },
    list,
    overlays: [strip.root, preview.root],
    below: [selection.root, search.root, results.root, events.root],
  });
  main.append(
    el(
      "div",
      { class: "rec-layout" },
      el("div", { class: "rec-main" }, card.root, player.root),
      el("aside", { class: "rec-side" }, calendar.root),
    ),
  );

  // -- the window shown ----------------------------------------------------------------
  function setExtent() {
    let lo = now90k() - 2 * 86400 * U;
    for (const c of cameras()) {
      const s = c.streams[state.stream];
      if (s?.minStartTime90k != null) lo = Math.min(lo, s.minStartTime90k);
    }
    // and the day picked, even one before any video (it says "no video")
    const [pa, pb] = state.picked || [lo, lo];
    card.timeline.setExtent(Math.min(lo - 86400 * U, pa), Math.max(now90k() + 3600 * U, pb));
  }

  /** [start, end) of the video recorded on `d` (as loaded), or null. */
  function recordedSpan(d) {
    const [a, b] = dayBounds(d, tz);
    let lo = Infinity;
    let hi = -Infinity;
    cameras().forEach((_, ci) => {
      for (const r of store.dayRows(ci, d) || []) {
        lo = Math.min(lo, r.startTime90k);
        hi = Math.max(hi, r.endTime90k);
      }
    });
    return lo < hi ? [Math.max(a, lo), Math.min(b, hi)] : null;
  }

  function syncUrl() {
    const q = new URLSearchParams({ day: state.day });
    if (state.stream !== "main") q.set("stream", state.stream);
    history.replaceState({}, "", `/recordings?${q}`);
  }

  /** Opens day `d`: zoomed to its recorded video, or to the last hour when today. */
  async function pickDay(d) {
    state.day = d;
    syncUrl();
    selection.show(null);
    const [a, b] = dayBounds(d, tz);
    state.picked = [a, b];
    setExtent();
    await load({ window: [a, b] });
    if (d !== state.day) return;
    const fit = recordedSpan(d);
    if (d === today()) {
      const now = now90k();
      card.timeline.setWindow(now - 3600 * U, now + 60 * U);
    } else if (fit) {
      card.timeline.setWindow(fit[0], fit[1]);
      card.setZoom("fit");
    } else {
      card.timeline.setWindow(a, b);
    }
    showTracks();
  }

  function showTracks() {
    const now = now90k();
    const signals = session.top.signals || [];
    const types = new Map((session.top.signalTypes || []).map((t) => [t.uuid, t]));
    const intervals = signals.length ? store.signals(now) : [];
    const cams = cameras();
    const tracks = cams.map((c, ci) => {
      const mine = new Map(signals.filter((s) => s.cameras?.[c.uuid]).map((s) => [s.id, s]));
      const bands = [];
      for (const iv of intervals) {
        const s = mine.get(iv.signalId);
        if (!s) continue;
        const st = types.get(s.type)?.states?.find((x) => x.value === iv.state);
        if (!st?.color && !st?.motion) continue; // an uncoloured resting state: no band
        bands.push({ start: iv.start, end: iv.end, color: st.color || "#ff8888", name: s.shortName });
      }
      return trackOf(c, store.rows(ci), state.stream, bands, motionOf(c, ci), marks.get(ci) || [],
        (evidence.get(ci) || []).filter((e) => e.kind === "protected" || e.stream === state.stream));
    });
    card.setTracks(tracks, cams.reduce((n, _, ci) => n + store.rows(ci).length, 0));
    showStrip();
    showEvents();
    if (state.view === "list") {
      list.render({
        cameras: cams,
        rows: (ci) => store.rows(ci),
        entries: store.entries,
        stream: state.stream,
        day: dayBounds(card.centerDay(), tz),
      });
    }
  }

  /** Each camera's protected spans and (with `redactVideo`) its redactions, then a redraw.
   * A server without these routes (404) or a failure leaves a camera without bands. */
  async function loadEvidence() {
    const mayRedact = !!session.top.permissions?.redactVideo;
    await Promise.all(
      cameras().map(async (c, ci) => {
        const out = [];
        try {
          for (const r of await api.protectedRanges(c.uuid)) {
            out.push({ start: r.startTime90k, end: r.endTime90k, kind: "protected", reason: r.reason });
          }
          for (const r of mayRedact ? await api.redactions(c.uuid) : []) {
            out.push({ start: r.startTime90k, end: r.endTime90k, kind: "redacted", reason: r.reason, stream: r.stream });
          }
        } catch (e) {
          if (e.status !== 404) toast(`${c.shortName}: protected spans: ${e.message}`);
          return;
        }
        evidence.set(ci, out.sort((x, y) => x.start - y.start));
      }),
    );
    showTracks();
  }

  /** Camera `ci`'s motion band: the spans loaded (zoomed in) or per-hour totals. */
  function motionOf(c, ci) {
    if (!c.motion) return null;
    if (card.timeline.detailed()) {
      return store.motion(ci).map((s) => ({
        start: s.startTime90k,
        end: s.endTime90k,
        level: Math.min(1, (s.peak || 0) * 4),
      }));
    }
    const out = [];
    for (const [d, info] of Object.entries(c.motion.days || {})) {
      const base = dayBounds(d, tz)[0];
      for (const [h, m] of Object.entries(info.hours || {})) {
        const start = base + Number(h) * 3600 * U;
        out.push({ start, end: start + 3600 * U, level: m / (600 * U) });
      }
    }
    return out.sort((x, y) => x.start - y.start);
  }

  /** The events list: motion spans and signal changes in the window. */
  function showEvents() {
    const [a, b] = card.timeline.win;
    const cams = cameras();
    const list = [];
    cams.forEach((c, ci) => {
      if (!c.motion || !card.timeline.detailed()) return;
      for (const s of store.motion(ci)) {
        if (s.endTime90k <= a || s.startTime90k >= b) continue;
        list.push({ ci, camera: c, stream: c.motion.stream || state.stream, start: s.startTime90k,
          end: s.endTime90k, peak: s.peak, label: "motion" });
      }
    });
    const signals = new Map((session.top.signals || []).map((s) => [s.id, s]));
    const types = new Map((session.top.signalTypes || []).map((t) => [t.uuid, t]));
    if (signals.size && card.timeline.detailed()) {
      for (const iv of store.signals(now90k())) {
        if (iv.start < a || iv.start >= b) continue;
        const s = signals.get(iv.signalId);
        const st = types.get(s?.type)?.states?.find((x) => x.value === iv.state);
        // the moments something noteworthy (a coloured or motion state) started
        if (!s || !(st?.motion || st?.color)) continue;
        const uuid = Object.keys(s.cameras || {})[0];
        const ci = cams.findIndex((c) => c.uuid === uuid);
        // a camera's own motion signal repeats its motion spans, listed above
        if (st.motion && cams[ci]?.motion && s.cameras[uuid] === "direct") continue;
        list.push({ ci: Math.max(0, ci), camera: cams[ci], stream: state.stream, start: iv.start,
          end: iv.end, peak: null, label: `${s.shortName}: ${st.name}` });
      }
    }
    const any = cams.some((c) => c.motion) || signals.size;
    events.render(any ? list : null);
    const ci = Math.min(card.timeline.cursorRow, cams.length - 1);
    const cam = cams[ci];
    if (cam?.motion) {
      const tl = card.timeline;
      const rows = store.rows(ci);
      let t = tl.cursor ?? player.wallTime() ?? (a + b) / 2;
      const r = rows.find((x) => x.endTime90k > t) || rows.at(-1);
      if (r && r.startTime90k > t) t = r.startTime90k;
      search.show(ci, cam, cam.motion.stream || state.stream, r ? Math.min(t, r.endTime90k - 1) : t);
    } else {
      search.show(null, null);
    }
  }

  async function searchRegion(ci, cells) {
    const cam = cameras()[ci];
    const [a, b] = card.timeline.win;
    search.status.textContent = "Searching…";
    let r;
    try {
      r = await api.motionSpans(cam.uuid, { startTime90k: a, endTime90k: b, cells, limit: 200 });
    } catch (e) {
      search.status.textContent = e.status === 404 ? "This server has no motion search." : e.message;
      return;
    }
    const spans = r.spans.map((s) => ({ start: s.startTime90k, end: s.endTime90k, peak: s.peak }));
    marks.set(ci, spans);
    search.status.textContent = spans.length
      ? `${spans.length}${r.nextEndTime90k ? "+" : ""} spans with motion in this area`
      : "No motion in this area in the window.";
    search.status.dataset.count = String(spans.length);
    results.root.open = true;
    results.render(spans.map((s) => ({ ci, camera: cam, stream: r.stream || state.stream, ...s, label: "motion here" })));
    showTracks();
  }

  /** The thumbnail strip of the camera the cursor is on, for the window. */
  function showStrip() {
    const tl = card.timeline;
    const ci = tl.cursorRow;
    strip.update({
      win: tl.win,
      left: tl.trackLeft(),
      width: tl.trackWidth(),
      spans: tl.visibleSpans(ci),
      cam: cameras()[ci],
      stream: state.stream,
    });
  }

  // The timeline is `aria-busy` while a load is due or in flight (for assistive tech,
  // and what tests wait for instead of a fixed delay).
  let loadTimer = null;
  let loading = 0;
  function busy(d) {
    loading += d;
    card.canvas.setAttribute("aria-busy", String(loading > 0 || loadTimer !== null));
  }
  function scheduleLoad() {
    clearTimeout(loadTimer);
    loadTimer = setTimeout(() => {
      loadTimer = null;
      showStrip();
      showEvents();
      load();
    }, LOAD_DELAY_MS);
    busy(0);
    const d = card.centerDay();
    if (d !== state.day) {
      state.day = d;
      syncUrl();
      calendar.update(daysWithVideo(cameras(), state.stream), d, today());
      if (state.view === "list") showTracks();
    }
  }

  /** Loads what the window (or `window`) needs; `refresh`: today's recordings again. */
  async function load(opts = {}) {
    busy(1);
    try {
      await loadNow(opts);
    } finally {
      busy(-1);
    }
  }

  async function loadNow({ window = null, refresh = false }) {
    const [a, b] = window || card.timeline.win;
    const span = b - a;
    if (span > DETAIL_MAX_90K) {
      showTracks(); // per-day totals, from /api/
      return;
    }
    const version = store.version;
    try {
      // the window and half of it each side, so a pan shows video at once
      await store.load(a - span / 2, b + span / 2, {
        refresh: refresh ? [today()] : [],
        signals: (session.top.signals || []).length > 0,
      });
    } catch (e) {
      if (e.status === 401) location.assign("/login?next=/recordings");
      return;
    }
    if (store.version !== version || !window) {
      showTracks();
      player.updateNav();
    }
  }

  // -- start, and keep today fresh -----------------------------------------------------
  const days = daysWithVideo(cameras(), state.stream);
  if (!state.day) {
    // today, unless the newest video is older than the last hour (today's view opens
    // on it): then the newest day with video
    const t = today();
    const newest = [...days.keys()].sort().at(-1);
    state.day = !newest || newest >= dayOf(now90k() - 3600 * U, tz) ? t : newest;
  }
  calendar.update(days, state.day, today());
  pickDay(state.day);
  loadEvidence();

  const poll = setInterval(() => {
    if (document.hidden) return;
    setExtent();
    if (card.timeline.win[1] >= dayBounds(today(), tz)[0]) load({ refresh: true });
  }, POLL_MS);
  const unsubscribe = session.subscribe(() => {
    calendar.update(daysWithVideo(cameras(), state.stream), state.day, today());
    if (!card.timeline.detailed()) showTracks();
  });
  return () => {
    clearInterval(poll);
    clearTimeout(loadTimer);
    unsubscribe();
    card.destroy();
    player.destroy();
    thumbs.destroy();
  };
}
