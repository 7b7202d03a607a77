// Recordings: a calendar of days with video, a 24-hour timeline per camera (from
// `.../recordings`, one row per recording), a player that plays from any instant
// through `view.mp4?s=ID@OPEN.REL_START-` (the edit list starts the file exactly there)
// with the wall-clock time of the frame on screen, previous/next recording, and the
// download of a selected span as one `.mp4` per run (a run's last frame has no duration,
// so recordings of different runs cannot share one file).

import * as api from "./api.js";
import { Calendar } from "./calendar.js";
import { el, segmented, toast } from "./dom.js";
import { Timeline, tzOffsetMs } from "./timeline.js";

const U = api.UNITS_PER_SEC;
const POLL_MS = 5000;
const MAX_PLAY_90K = 3600 * U; // one view.mp4 covers at most an hour; then the next
const ZOOMS = [
  ["day", "24 h", 86400],
  ["6h", "6 h", 21600],
  ["1h", "1 h", 3600],
  ["10m", "10 min", 600],
  ["fit", "Fit", null],
];

/** [start, end) of a local day in the server's zone, when no stream reports it. */
export function dayBounds(day, tz) {
  const [y, m, d] = day.split("-").map(Number);
  const local = (yy, mm, dd) => {
    const guess = Date.UTC(yy, mm - 1, dd);
    let t = guess - tzOffsetMs(guess, tz);
    t = guess - tzOffsetMs(t, tz);
    return api.fromMillis(t);
  };
  const next = new Date(Date.UTC(y, m - 1, d + 1));
  return [local(y, m, d), local(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate())];
}

/** Consecutive rows of one run, from `rows[i]`, that one view.mp4 can play in a row. */
function runFrom(rows, i, limit90k = Infinity) {
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

function idRange(first, last) {
  return { startId: first.startId, endId: last.endId ?? last.startId, openId: first.openId };
}

/** `s=` values and file count for a span [a, b) of a camera's rows (sorted by time). */
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
        spec: api.segmentSpec(idRange(first, rows[last]), rel0, rel1),
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

export function renderRecordings(main, session) {
  const tz = session.tz;
  const params = new URLSearchParams(location.search);
  const state = {
    stream: params.get("stream") === "sub" ? "sub" : "main",
    day: params.get("day"),
    zoom: "day",
    rows: [], // per camera: sorted recordings of the day
    playing: null, // what the player shows: camera index, wall time of media time 0...
    selection: null,
    selCam: 0,
  };
  const cameras = () => session.top.cameras;
  const today = () => api.dayOf(api.now90k(), tz);

  // -- layout --------------------------------------------------------------------------
  const calendar = new Calendar({ onPick: (d) => pickDay(d) });
  const video = el("video", {
    id: "player",
    playsinline: true,
    muted: true,
    preload: "auto",
    "aria-label": "Recorded video",
  });
  video.muted = true;
  const wall = el("output", { id: "wall-time", class: "wall", "aria-live": "off" }, "--:--:--.---");
  const wallDate = el("span", { class: "muted" });
  const playingName = el("strong", { id: "playing-camera" }, "");
  const prevBtn = el(
    "button",
    { type: "button", id: "prev-rec", disabled: true, "aria-label": "Previous recording" },
    "◀",
    el("span", { class: "wide-only" }, " Previous"),
  );
  const nextBtn = el(
    "button",
    { type: "button", id: "next-rec", disabled: true, "aria-label": "Next recording" },
    el("span", { class: "wide-only" }, "Next "),
    "▶",
  );
  const hint = el(
    "p",
    { class: "player-hint muted", id: "player-hint" },
    "Click a camera's timeline to play from that moment; Shift+drag (or “Select”) to pick a span to download.",
  );
  const player = el(
    "section",
    { class: "player card", "aria-label": "Player" },
    el("div", { class: "video-wrap" }, video, hint),
    el(
      "div",
      { class: "player-bar" },
      prevBtn,
      el("div", { class: "wall-box" }, playingName, wall, wallDate),
      nextBtn,
    ),
  );
  const canvas = el("canvas", {
    id: "timeline",
    "aria-label": "Day timeline",
    "aria-describedby": "timeline-keys",
  });
  const keysHelp = el(
    "p",
    { id: "timeline-keys", class: "sr-only" },
    "Left and Right move the cursor, Page Up and Page Down in bigger steps, Up and Down " +
      "pick the camera, Enter plays from the cursor, Shift with Left or Right selects a " +
      "span to download, Escape clears it, plus and minus zoom.",
  );
  const dayTitle = el("h2", { id: "day-title" }, "");
  const selectToggle = el("input", { type: "checkbox", id: "select-mode" });
  const zoomBar = segmented("zoom", "Zoom", ZOOMS.map(([v, l]) => [v, l]), state.zoom, (v) => setZoom(v));
  const streamPick = segmented(
    "rec-stream",
    "Stream",
    [
      ["main", "main"],
      ["sub", "sub"],
    ],
    state.stream,
    (v) => {
      state.stream = v;
      syncUrl();
      load();
    },
  );
  const panLeft = el("button", { type: "button", class: "icon", "aria-label": "Earlier" }, "‹");
  const panRight = el("button", { type: "button", class: "icon", "aria-label": "Later" }, "›");
  panLeft.addEventListener("click", () => timeline.pan(-0.5));
  panRight.addEventListener("click", () => timeline.pan(0.5));
  const selPanel = el("div", { class: "selection", id: "selection", hidden: true });
  const tlCard = el(
    "section",
    { class: "timeline-card card", "aria-label": "Timeline" },
    el(
      "div",
      { class: "tl-head" },
      dayTitle,
      el("div", { class: "tl-tools" }, panLeft, zoomBar, panRight,
        el("label", { class: "check" }, selectToggle, "Select"), streamPick),
    ),
    canvas,
    el(
      "div",
      { class: "legend", "aria-hidden": "true" },
      el("span", { class: "sw rec" }), "recorded",
      el("span", { class: "sw growing" }), "being recorded",
      el("span", { class: "sw gap" }), "no video",
      el("span", { class: "sw sel" }), "selected",
      el("span", { class: "sw play" }), "playing",
    ),
    keysHelp,
    selPanel,
  );
  main.append(
    el("div", { class: "rec-layout" }, el("aside", { class: "rec-side" }, calendar.root), el("div", { class: "rec-main" }, player, tlCard)),
  );

  const timeline = new Timeline(canvas, {
    tz,
    onPlay: (ci, t) => playAt(ci, t),
    onSelect: (sel) => {
      state.selection = sel;
      state.selCam = timeline.cursorRow;
      renderSelection();
    },
  });
  selectToggle.addEventListener("change", () => (timeline.selectMode = selectToggle.checked));

  // -- data ----------------------------------------------------------------------------
  function dayMap() {
    const days = new Map();
    for (const c of cameras()) {
      const s = c.streams[state.stream];
      for (const [d, v] of Object.entries(s?.days || {})) {
        days.set(d, Math.max(days.get(d) || 0, v.totalDuration90k));
      }
    }
    return days;
  }

  function bounds(day) {
    for (const c of cameras()) {
      const d = c.streams[state.stream]?.days?.[day];
      if (d) return [d.startTime90k, d.endTime90k];
    }
    return dayBounds(day, tz);
  }

  function syncUrl() {
    const q = new URLSearchParams({ day: state.day });
    if (state.stream !== "main") q.set("stream", state.stream);
    history.replaceState({}, "", `/recordings?${q}`);
  }

  function pickDay(day) {
    state.day = day;
    state.selection = null;
    syncUrl();
    const [a, b] = bounds(day);
    timeline.setDay(a, b);
    dayTitle.textContent = api.formatDay(day, tz);
    calendar.update(dayMap(), day, today());
    renderSelection();
    load().then(() => setZoom(state.zoom));
  }

  let loading = null;
  async function load() {
    const day = state.day;
    const [a, b] = bounds(day);
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
    if (loading !== p || day !== state.day || stream !== state.stream) return;
    state.rows = rows;
    timeline.setRows(
      cams.map((c, i) => ({
        label: c.shortName,
        down: ["backoff", "idle"].includes(c.streams[stream]?.nvrStatus?.state),
        spans: rows[i].map((r) => ({
          start: Math.max(r.startTime90k, a),
          end: Math.min(r.endTime90k, b),
          growing: !!r.growing,
        })),
      })),
    );
    canvas.dataset.loaded = String(Date.now());
    canvas.dataset.recordings = String(rows.reduce((n, r) => n + r.length, 0));
    updateNav();
  }

  function setZoom(z) {
    state.zoom = z;
    const [a, b] = timeline.day;
    if (z === "fit") {
      const all = state.rows.flat();
      if (all.length) {
        const lo = Math.max(a, Math.min(...all.map((r) => r.startTime90k)));
        const hi = Math.min(b, Math.max(...all.map((r) => r.endTime90k)));
        const pad = Math.max((hi - lo) * 0.05, 2 * U);
        timeline.setWindow(lo - pad, hi + pad);
      }
      return;
    }
    const span = ZOOMS.find(([v]) => v === z)[2] * U;
    if (span >= b - a) {
      timeline.setWindow(a, b);
      return;
    }
    const center = state.playing ? currentWall() : Math.min(api.now90k(), b) - span / 2;
    timeline.setWindow(center - span / 2, center + span / 2);
  }

  // -- playback ------------------------------------------------------------------------
  function playAt(ci, t) {
    const rows = state.rows[ci] || [];
    let i = rows.findIndex((r) => r.endTime90k > t);
    if (i < 0) {
      toast("No video after this moment.");
      return;
    }
    if (rows[i].startTime90k > t) t = rows[i].startTime90k; // in a gap: the next recording
    const j = runFrom(rows, i, MAX_PLAY_90K);
    const rel = t - rows[i].startTime90k;
    const cam = cameras()[ci];
    const spec = api.segmentSpec(idRange(rows[i], rows[j]), rel || undefined, undefined);
    state.playing = {
      ci,
      base90k: t,
      wallEnd90k: rows[j].endTime90k,
      growing: rows.slice(i, j + 1).some((r) => r.growing),
      ratio: 1, // wall time per media time, once the file's duration is known
      mediaTime: 0,
    };
    video.controls = true; // only once there is something to control
    video.src = api.viewMp4Url(cam.uuid, state.stream, [spec]);
    video.dataset.base90k = String(t);
    video.play().catch(() => {});
    hint.hidden = true;
    playingName.textContent = cam.shortName;
    showWall(t);
    timeline.setPlayhead(t, ci);
    updateNav();
  }

  function currentWall() {
    const p = state.playing;
    return p ? p.base90k + Math.round(p.mediaTime * U * p.ratio) : null;
  }

  // The file's media time runs at the camera's clock; the recordings' wall times are
  // corrected to ours (by up to 500 ppm: 1.8 s an hour). Spread the difference evenly.
  video.addEventListener("loadedmetadata", () => {
    const p = state.playing;
    if (!p || p.growing || !(video.duration > 0) || !Number.isFinite(video.duration)) return;
    const ratio = (p.wallEnd90k - p.base90k) / (video.duration * U);
    if (Math.abs(ratio - 1) < 0.01) p.ratio = ratio;
  });

  function showWall(t) {
    wall.textContent = api.formatTime(t, tz, "timeMs");
    wall.dataset.time90k = String(t);
    wallDate.textContent = api.formatDay(api.dayOf(t, tz), tz);
  }

  function onFrame(mediaTime) {
    if (!state.playing) return;
    state.playing.mediaTime = mediaTime;
    const t = currentWall();
    showWall(t);
    timeline.setPlayhead(t, state.playing.ci);
  }

  if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) {
    const cb = (_now, meta) => {
      onFrame(meta.mediaTime);
      video.requestVideoFrameCallback(cb);
    };
    video.requestVideoFrameCallback(cb);
    video.addEventListener("seeked", () => onFrame(video.currentTime));
  } else {
    video.addEventListener("timeupdate", () => onFrame(video.currentTime));
  }
  video.addEventListener("ended", () => {
    // on from where this file ended: the next recording, or more of a growing one
    const p = state.playing;
    if (!p) return;
    const t = currentWall();
    const next = (state.rows[p.ci] || []).find((r) => r.endTime90k > t + U / 10);
    if (next) playAt(p.ci, Math.max(t, next.startTime90k));
  });
  video.addEventListener("error", () => {
    if (!video.getAttribute("src")) return;
    toast("This video could not be played (it may have been deleted).");
    load(); // what is left of the day
  });

  function currentIndex() {
    const p = state.playing;
    if (!p) return -1;
    const rows = state.rows[p.ci] || [];
    const t = currentWall();
    const i = rows.findIndex((r) => r.endTime90k > t);
    return i < 0 ? rows.length - 1 : i;
  }

  function updateNav() {
    const p = state.playing;
    const i = currentIndex();
    prevBtn.disabled = !p || i <= 0;
    nextBtn.disabled = !p || i < 0 || i + 1 >= (state.rows[p.ci] || []).length;
  }

  prevBtn.addEventListener("click", () => {
    const i = currentIndex();
    if (i > 0) playAt(state.playing.ci, state.rows[state.playing.ci][i - 1].startTime90k);
  });
  nextBtn.addEventListener("click", () => {
    const i = currentIndex();
    const rows = state.rows[state.playing.ci];
    if (i + 1 < rows.length) playAt(state.playing.ci, rows[i + 1].startTime90k);
  });

  // -- selection and download ----------------------------------------------------------
  // The span's ends as text (HH:MM:SS.mmm in the server's zone), for keyboards and
  // fingers; they are read back as that much time after the start of the day (a day
  // with a DST change is off by the change after it).
  function timeInput(id, label, value) {
    const input = el("input", {
      type: "text",
      id,
      inputmode: "decimal",
      pattern: "\\d{1,2}:\\d{2}(:\\d{2}(\\.\\d{1,3})?)?",
      size: "12",
      value: api.formatTime(value, tz, "timeMs"),
      "aria-describedby": "sel-help",
    });
    return [el("label", { for: id }, label), input];
  }

  function parseClock(text) {
    const m = /^\s*(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?\s*$/.exec(text);
    if (!m) return null;
    const ms = Number((m[4] || "0").padEnd(3, "0"));
    return ((+m[1] * 60 + +m[2]) * 60 + +(m[3] || 0)) * U + ms * 90;
  }

  function renderSelection() {
    const sel = state.selection;
    if (!sel) {
      selPanel.hidden = true;
      selPanel.replaceChildren();
      timeline.setSelection(null);
      return;
    }
    timeline.setSelection(sel);
    selPanel.hidden = false;
    const cams = cameras();
    const ci = Math.min(state.selCam, cams.length - 1);
    const cam = cams[ci];
    const parts = downloadParts(state.rows[ci] || [], sel[0], sel[1]);
    const [from, fromInput] = timeInput("sel-from", "From", sel[0]);
    const [to, toInput] = timeInput("sel-to", "to", sel[1]);
    const dayStart = timeline.day[0];
    const change = () => {
      const ra = parseClock(fromInput.value);
      const rb = parseClock(toInput.value);
      if (ra === null || rb === null || rb <= ra) {
        toast("Enter a start before the end, as HH:MM:SS.");
        return;
      }
      state.selection = [dayStart + ra, dayStart + rb];
      renderSelection();
    };
    fromInput.addEventListener("change", change);
    toInput.addEventListener("change", change);
    const camSel = el(
      "select",
      { id: "sel-camera", "aria-label": "Camera to download" },
      cams.map((c, i) => el("option", { value: String(i), selected: i === ci }, c.shortName)),
    );
    camSel.addEventListener("change", () => {
      state.selCam = Number(camSel.value);
      renderSelection();
    });
    const links = parts.map((p, k) =>
      el(
        "a",
        {
          class: "button primary",
          href: api.viewMp4Url(cam.uuid, state.stream, [p.spec]),
          download: "",
          dataset: { start90k: String(p.start), end90k: String(p.end) },
        },
        `Download${parts.length > 1 ? ` part ${k + 1}` : ""} .mp4 (${api.formatDuration(p.end - p.start)}, ≈${api.formatBytes(p.bytes)})`,
      ),
    );
    const clear = el("button", { type: "button" }, "Clear");
    clear.addEventListener("click", () => {
      state.selection = null;
      renderSelection();
    });
    selPanel.replaceChildren(
      el("div", { class: "sel-fields" }, camSel, from, fromInput, to, toInput,
        el("span", { class: "muted", id: "sel-help" }, `${api.formatDuration(sel[1] - sel[0])} (times as HH:MM:SS.mmm, ${tz})`)),
      el(
        "div",
        { class: "sel-actions" },
        links.length ? links : el("span", { class: "muted" }, "No video in this span."),
        parts.length > 1 ? el("span", { class: "muted" }, "The camera reconnected inside this span: one file per session.") : null,
        clear,
      ),
    );
  }

  // -- start, and keep today fresh -----------------------------------------------------
  const days = dayMap();
  if (!state.day) {
    const t = today();
    state.day = days.has(t) || !days.size ? t : [...days.keys()].sort().at(-1);
  }
  pickDay(state.day);

  const poll = setInterval(() => {
    if (!document.hidden && state.day === today()) load();
  }, POLL_MS);
  const unsubscribe = session.subscribe(() => calendar.update(dayMap(), state.day, today()));
  return () => {
    clearInterval(poll);
    unsubscribe();
    timeline.destroy();
    video.removeAttribute("src");
    video.load();
  };
}
