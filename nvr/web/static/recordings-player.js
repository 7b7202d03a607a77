// The recordings player: a <video> that plays a camera's recordings from any instant
// through `view.mp4?s=ID@OPEN.REL_START-` (the edit list starts the file exactly there),
// the wall-clock time of the frame on screen, and previous/next recording. One file
// covers at most an hour of one run; when it ends, the player goes on with what follows.
// Before it plays, it asks the browser whether it decodes the recording's codec
// (`playability.js`); if not, it plays the camera's sub stream when the user allows it
// (the live page's choice), the browser plays its codec and its recordings cover the span
// (asked of `.../sub/recordings`), else `view.mp4?transcode=h264` (H.264 converted by the
// server, a stream without byte ranges: seeking asks for a new file), and says which.
// When recorded video runs out (a file that reached the recording being made ended, less
// than LIVE_WITHIN_MS after it was asked for, or no video follows while the camera
// records), the player goes on with that camera's live stream (`live.js`) in the same
// <video> and says so (converted too when the browser cannot play the camera's codec); a
// click on the timeline plays recorded video again.

import { recordings, segmentSpec, viewMp4Url } from "./api.js";
import { allowSub, choose, convertedLabel } from "./playability.js";
import { el, toast } from "./dom.js";
import { formatDay, formatTime } from "./format.js";
import { LivePlayer } from "./live.js";
import { idRange, runFrom } from "./recordings-runs.js";
import { dayOf, UNITS_PER_SEC as U } from "./time.js";

const MAX_PLAY_90K = 3600 * U; // one view.mp4 covers at most an hour; then the next
// A file of the recording being made covers it up to when the file was asked for: if it
// ends sooner than this after, live is that close; later, more recorded video follows.
const LIVE_WITHIN_MS = 15000;
// The sub stream's recordings stand in for the main stream's when they cover the span up
// to this much less (the two streams' sessions start and stop a moment apart).
const SUB_SLACK_90K = 2 * U;

export class RecordingPlayer {
  /** `source` reads the page's current data: `camera(ci)`, `rows(ci)` (that camera's
   * recordings, sorted by time), `stream()` and `entries()` (`videoSampleEntries` by id). `onPlayhead(t, ci)` hears the wall time
   * of the frame on screen; `onGone()` that a file could not be played. */
  constructor({ tz, source, onPlayhead, onGone }) {
    this.tz = tz;
    this.source = source;
    this.onPlayhead = onPlayhead;
    this.onGone = onGone;
    this.playing = null; // camera index, wall time of media time 0...
    this.live = null; // the LivePlayer once recorded video ran out
    this.liveCi = null;
    this.token = 0; // of the latest play(): an older one's sub-stream answer is dropped
    this.subMissing = null;
    const video = el("video", {
      id: "player",
      playsinline: true,
      muted: true,
      preload: "auto",
      "aria-label": "Recorded video",
    });
    video.muted = true;
    this.video = video;
    this.wall = el("output", { id: "wall-time", class: "wall", "aria-live": "off" }, "--:--:--.---");
    this.wallDate = el("span", { class: "muted" });
    this.cameraName = el("strong", { id: "playing-camera" }, "");
    this.pathBadge = el("span", { class: "path-badge", id: "play-path", hidden: true });
    this.prevBtn = el(
      "button",
      { type: "button", id: "prev-rec", disabled: true, "aria-label": "Previous recording" },
      "◀",
      el("span", { class: "wide-only" }, " Previous"),
    );
    this.nextBtn = el(
      "button",
      { type: "button", id: "next-rec", disabled: true, "aria-label": "Next recording" },
      el("span", { class: "wide-only" }, "Next "),
      "▶",
    );
    this.hint = el(
      "p",
      { class: "player-hint muted", id: "player-hint" },
      "Click a camera's timeline to play from that moment; Shift+drag (or “Select”) to pick a span to download.",
    );
    this.status = el("p", { class: "player-status", id: "player-status", role: "status", hidden: true });
    this.root = el(
      "section",
      { class: "player card", "aria-label": "Player" },
      el("div", { class: "video-wrap" }, video, this.hint),
      el(
        "div",
        { class: "player-bar" },
        this.prevBtn,
        el("div", { class: "wall-box" }, this.cameraName, this.pathBadge, this.wall, this.wallDate),
        this.nextBtn,
      ),
      this.status,
    );
    this.listen();
  }

  /** Plays camera `ci` from wall time `t` (or from its next recording, in a gap). */
  play(ci, t) {
    const rows = this.source.rows(ci);
    let i = rows.findIndex((r) => r.endTime90k > t);
    if (i < 0) {
      toast("No video after this moment.");
      return;
    }
    if (rows[i].startTime90k > t) t = rows[i].startTime90k; // in a gap: the next recording
    const j = runFrom(rows, i, MAX_PLAY_90K);
    const rel = t - rows[i].startTime90k;
    const cam = this.source.camera(ci);
    const stream = this.source.stream();
    const entry = (this.source.entries?.() || {})[rows[i].videoSampleEntryId];
    this.lastCodec = entry?.nvrCodec;
    const file = {
      stream,
      spec: segmentSpec(idRange(rows[i], rows[j]), rel || undefined, undefined),
      end: rows[j].endTime90k,
      growing: rows.slice(i, j + 1).some((r) => r.growing),
      plan: choose({ streams: { [stream]: { nvrCodec: entry?.nvrCodec } } }, stream, { subAllowed: false }),
    };
    const token = ++this.token;
    if (file.plan.path !== "native" && stream !== "sub" && cam.streams?.sub && allowSub()) {
      // the sub stream instead, when it plays here and has recordings of this span
      this.subFile(cam, entry?.nvrCodec, t, file.end).then(
        (sub) => token === this.token && this.start(ci, t, sub || file),
        () => token === this.token && this.start(ci, t, file),
      );
      return;
    }
    this.start(ci, t, file);
  }

  /** The sub stream's file from `t` if the browser plays the sub stream's codec and its
   * recordings cover [t, end) (to within SUB_SLACK_90K); else null, and `why` of the
   * main stream's plan says which was missing. */
  async subFile(cam, mainCodec, t, end) {
    const answer = await recordings(cam.uuid, "sub", t, end);
    const rows = [...(answer.recordings || [])].sort((a, b) => a.startTime90k - b.startTime90k);
    const i = rows.findIndex((r) => r.startTime90k <= t && r.endTime90k > t);
    const j = i < 0 ? -1 : runFrom(rows, i, MAX_PLAY_90K);
    const entry = i < 0 ? null : (answer.videoSampleEntries || {})[rows[i].videoSampleEntryId];
    const covers = j >= 0 && rows[j].endTime90k >= Math.min(end, rows[i].startTime90k + MAX_PLAY_90K) - SUB_SLACK_90K;
    const plan = choose(
      { streams: { main: { nvrCodec: mainCodec }, sub: { nvrCodec: entry?.nvrCodec ?? cam.streams.sub.nvrCodec } } },
      "main",
      { subAllowed: true },
    );
    if (!covers || plan.path !== "sub") {
      this.subMissing = covers ? null : "the sub stream has no recordings of this span";
      return null;
    }
    plan.why += ", and has recordings of this span";
    return {
      stream: "sub",
      spec: segmentSpec(idRange(rows[i], rows[j]), t - rows[i].startTime90k || undefined, undefined),
      end: rows[j].endTime90k,
      growing: rows.slice(i, j + 1).some((r) => r.growing),
      plan,
    };
  }

  /** Plays `file` (`{stream, spec, end, growing, plan}`) of camera `ci`, whose first
   * frame is at wall time `t`. */
  start(ci, t, { stream, spec, end, growing, plan }) {
    const cam = this.source.camera(ci);
    const why = plan.path === "converted" && this.subMissing ? `${plan.why} (${this.subMissing})` : plan.why;
    this.subMissing = null;
    this.showPath(plan.label, why, plan.path);
    this.stopLive();
    this.say(null);
    this.playing = {
      transcode: plan.transcode,
      stream,
      ci,
      base90k: t,
      wallEnd90k: end,
      growing,
      ratio: 1, // wall time per media time, once the file's duration is known
      mediaTime: 0,
      askedAt: performance.now(),
    };
    const video = this.video;
    video.controls = true; // only once there is something to control
    video.src = viewMp4Url(cam.uuid, stream, [spec], { transcode: plan.transcode });
    video.dataset.base90k = String(t);
    video.dataset.stream = stream;
    video.play().catch(() => {});
    this.hint.hidden = true;
    this.cameraName.textContent = cam.shortName;
    this.showWall(t);
    this.onPlayhead(t, ci);
    this.updateNav();
  }

  /** Camera `ci`'s live stream in the player, recorded video having run out at `t`. */
  goLive(ci, t) {
    const cam = this.source.camera(ci);
    const wasSub = this.playing?.stream === "sub";
    this.stopLive();
    this.playing = null;
    this.liveCi = ci;
    const video = this.video;
    video.dataset.mode = "live";
    const ended = `Recorded video ended at ${formatTime(t, this.tz)}`;
    this.say(`● Live: ${ended}; now showing ${cam.shortName} live.`, "live");
    const stream = this.source.stream();
    // the sub stream's recordings played (main is not playable here): its live stream too
    const livePlan = wasSub
      ? { stream: "sub", transcode: false, path: "sub", label: "sub stream", why: this.pathBadge.title.replace(/^Plays [^:]*: /, "") }
      : choose({ streams: { [stream]: { nvrCodec: this.lastCodec } } }, stream, { subAllowed: false });
    this.showPath(livePlan.label, livePlan.why, livePlan.path);
    this.live = new LivePlayer(video, cam.uuid, livePlan.stream, {
      transcode: livePlan.transcode,
      onState: (state, detail) => {
        if (state === "playing") this.say(`● Live: ${ended}; now showing ${cam.shortName} live.`, "live");
        else if (state === "offline" || state === "error") this.say(`Live: ${ended}; ${cam.shortName}: ${detail?.message || state}.`, "live");
      },
      onFrame: (msg) => {
        const now = msg.recordingStart90k + msg.mediaStart90k;
        this.liveWall = now;
        this.showWall(now);
        this.onPlayhead(now, ci);
      },
    });
    this.updateNav();
  }

  stopLive() {
    if (!this.live) return;
    this.live.close();
    this.live = null;
    this.liveCi = null;
    this.liveWall = null;
    delete this.video.dataset.mode;
  }

  /** A line under the player (null: none); `kind` is its `data-kind`. */
  say(text, kind = "") {
    this.status.hidden = !text;
    this.status.textContent = text || "";
    this.status.dataset.kind = text ? kind : "";
  }

  /** Space/K ("toggle") pauses or resumes, J/L ("back", "forward") step 10 s; false
   * when nothing is loaded to act on. */
  transport(action) {
    const v = this.video;
    if (this.live) {
      // live: K pauses or resumes, J goes back 10 s into the recorded video, L is live already
      if (action === "toggle") {
        if (v.paused) v.play().catch(() => {});
        else v.pause();
      } else if (action === "back" && this.liveWall != null) {
        this.play(this.liveCi, this.liveWall - 10 * U);
      }
      return true;
    }
    if (!this.playing || !v.getAttribute("src")) return false;
    if (action === "toggle") {
      if (v.paused) v.play().catch(() => {});
      else v.pause();
    } else {
      const d = action === "back" ? -10 : 10;
      const end = Number.isFinite(v.duration) ? v.duration : Infinity;
      const to = Math.max(0, Math.min(end, v.currentTime + d));
      const b = v.buffered;
      const inside = [...Array(b.length).keys()].some((k) => to >= b.start(k) && to <= b.end(k));
      if (this.playing.transcode && !inside) {
        // a converted file has no byte ranges: a new one from there
        this.play(this.playing.ci, this.wallTime() + Math.round((to - v.currentTime) * U));
      } else {
        v.currentTime = to;
      }
    }
    return true;
  }

  /** The wall time of the frame on screen, or null when nothing plays. */
  wallTime() {
    const p = this.playing;
    return p ? p.base90k + Math.round(p.mediaTime * U * p.ratio) : null;
  }

  /** Enables previous/next for the recordings around the frame on screen. */
  updateNav() {
    const p = this.playing;
    const i = this.currentIndex();
    this.prevBtn.disabled = !p || i <= 0;
    this.nextBtn.disabled = !p || i < 0 || i + 1 >= this.source.rows(p.ci).length;
  }

  destroy() {
    this.stopLive();
    this.video.removeAttribute("src");
    this.video.load();
  }

  /** Says which way the video plays ("native", "sub stream", "converted 720p") and why. */
  showPath(label, why, path) {
    const b = this.pathBadge;
    b.textContent = label;
    b.title = `Plays ${label}: ${why}`;
    b.setAttribute("aria-label", b.title);
    b.dataset.path = path;
    b.hidden = false;
  }

  // -- internals -----------------------------------------------------------------------

  listen() {
    const video = this.video;
    // The file's media time runs at the camera's clock; the recordings' wall times are
    // corrected to ours (by up to 500 ppm: 1.8 s an hour). Spread the difference evenly.
    video.addEventListener("loadedmetadata", () => {
      const p = this.playing;
      if (p?.transcode) this.showPath(convertedLabel(video.videoHeight), this.pathBadge.title.replace(/^Plays [^:]*: /, ""), "converted");
      if (!p || p.growing || !(video.duration > 0) || !Number.isFinite(video.duration)) return;
      const ratio = (p.wallEnd90k - p.base90k) / (video.duration * U);
      if (Math.abs(ratio - 1) < 0.01) p.ratio = ratio;
    });
    if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) {
      const cb = (_now, meta) => {
        this.onFrame(meta.mediaTime);
        video.requestVideoFrameCallback(cb);
      };
      video.requestVideoFrameCallback(cb);
      video.addEventListener("seeked", () => this.onFrame(video.currentTime));
    } else {
      video.addEventListener("timeupdate", () => this.onFrame(video.currentTime));
    }
    video.addEventListener("ended", () => {
      // on from where this file ended: the next recording, more of a growing one, or live
      const p = this.playing;
      if (!p) return;
      const t = this.wallTime();
      const rows = this.source.rows(p.ci);
      const next = rows.find((r) => r.endTime90k > t + U / 10);
      if (p.growing && performance.now() - p.askedAt < LIVE_WITHIN_MS) {
        this.goLive(p.ci, t);
      } else if (next) {
        this.play(p.ci, Math.max(t, next.startTime90k));
      } else if (this.recordingNow(p.ci)) {
        this.goLive(p.ci, t);
      } else {
        this.say(`End of recorded video (${formatTime(t, this.tz)}).`, "end");
      }
    });
    video.addEventListener("error", () => {
      if (this.live || !video.getAttribute("src")) return;
      toast("This video could not be played (it may have been deleted).");
      this.onGone();
    });
    this.prevBtn.addEventListener("click", () => {
      const i = this.currentIndex();
      if (i > 0) this.play(this.playing.ci, this.source.rows(this.playing.ci)[i - 1].startTime90k);
    });
    this.nextBtn.addEventListener("click", () => {
      const i = this.currentIndex();
      const rows = this.source.rows(this.playing.ci);
      if (i + 1 < rows.length) this.play(this.playing.ci, rows[i + 1].startTime90k);
    });
  }

  /** Whether camera `ci` records now: its newest recording is being made, or its
   * stream's status says so. */
  recordingNow(ci) {
    if (this.source.rows(ci).at(-1)?.growing) return true;
    const s = this.source.camera(ci).streams?.[this.source.stream()];
    return s?.nvrStatus?.state === "recording";
  }

  onFrame(mediaTime) {
    if (!this.playing) return;
    this.playing.mediaTime = mediaTime;
    const t = this.wallTime();
    this.showWall(t);
    this.onPlayhead(t, this.playing.ci);
  }

  showWall(t) {
    this.wall.textContent = formatTime(t, this.tz, "timeMs");
    this.wall.dataset.time90k = String(t);
    this.wallDate.textContent = formatDay(dayOf(t, this.tz));
  }

  /** The index of the recording on screen in its camera's rows, or -1. */
  currentIndex() {
    const p = this.playing;
    if (!p) return -1;
    const rows = this.source.rows(p.ci);
    const t = this.wallTime();
    const i = rows.findIndex((r) => r.endTime90k > t);
    return i < 0 ? rows.length - 1 : i;
  }
}
