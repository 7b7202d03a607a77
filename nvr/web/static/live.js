// Live view over `GET /api/cameras/<uuid>/<stream>/live.m4s` (WebSocket): the only
// module that knows the message format. What it expects from the server:
//
// * binary message: an HTTP-style header block, lines ending in "\r\n" and the block in
//   an empty line ("\r\n\r\n"), then one fMP4 media segment (`moof` + `mdat`) whose
//   decode time (`tfdt`) is 0, as Moonfire's server writes it; one frame per message.
//   Headers used:
//     Content-Type: video/mp4; codecs="avc1.4d401e"   (the MSE type of the stream)
//     X-Video-Sample-Entry-Id: 4                     (init segment: /api/init/4.mp4)
//     X-Recording-Id: 42.5681                        (open id . recording id)
//     X-Recording-Start: 130985461191822             (90 kHz wall time)
//     X-Prev-Media-Duration: 10180003                (media time before this recording)
//     X-Runs: 3                                      (runs so far, this one included)
//     X-Media-Time-Range: 180002-183002              (this frame's media span in the rec)
//   The first message after connecting (and after a `drop`) starts with a key frame.
// * text message {"type": "drop", "frames": N} (JSON): this client fell behind; N frames
//   were skipped and the next binary message starts at a key frame.
// * text message {"type": "offline", "message": "..."} (JSON): the camera's session ended
//   (or it was already down when this socket opened); the socket stays open and the
//   frames of its next session follow on it as soon as it records again, so the tile
//   says "offline" at once and plays again at once, without reconnecting.
// * text message {"type": "error", "message": "..."} (JSON, as Moonfire's server sends;
//   also when the caller may not watch): the server closes the socket after it. Any
//   other text is taken as an error message too.
// * pings (answered by the browser).
//
// Converted (`transcode: true`, the URL's `transcode=h264`, issue 20): the same messages,
// H.264, without X-Video-Sample-Entry-Id; a message whose body starts with its init
// segment says so with `X-Nvr-Init-Length: <bytes>` (the first, and after the camera's
// codec parameters changed), and `X-Nvr-Transcoded: 1280x720` gives the picture size.
//
// Placement: only X-Recording-Id and X-Media-Time-Range are relied on. Within one
// recording a frame goes at (that recording's position) + (its media start); a new
// recording is placed right after the end of the last frame seen of the one before.
// (X-Prev-Media-Duration would give the same for a stream without gaps, but Moonfire's
// own example messages grow it within a recording, so its meaning per message is not
// pinned down well enough to build on.) The segment starts at decode time 0, so
// `timestampOffset` = that position puts the frame there. A new sample entry id fetches its init segment and appends it (with `changeType`
// when the codec string changed). A gap (frames dropped inside a recording) is skipped
// by seeking forward. The tile's clock shows X-Recording-Start + the media start.

import { initSegmentUrl, liveUrl } from "./api.js";

const MAX_BACKOFF_MS = 15000;
const LIVE_EDGE_SLACK = 1.5; // seconds behind the newest frame before jumping ahead
const KEEP_SECONDS = 20; // buffered video kept behind the playhead
const STALL_MIN_MS = 2000; // playing, no frame for this long (or 3 frame intervals): "no video"
const FIRST_FRAME_MS = 5000; // connected, no frame yet (the first waits for a key frame)
const CUSHION = 0.2; // seconds of video buffered ahead of the playhead before it plays

export function parseMessage(buf) {
  const bytes = new Uint8Array(buf);
  let end = -1;
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new Error("live message without a header block");
  const headers = new Map();
  const text = new TextDecoder().decode(bytes.subarray(0, end));
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const range = (headers.get("x-media-time-range") || "0-0").split("-").map(Number);
  return {
    contentType: headers.get("content-type") || "",
    sampleEntryId: Number(headers.get("x-video-sample-entry-id")),
    recordingId: headers.get("x-recording-id") || "",
    recordingStart90k: Number(headers.get("x-recording-start")),
    prevMediaDuration90k: Number(headers.get("x-prev-media-duration") || 0),
    runs: Number(headers.get("x-runs") || 0),
    mediaStart90k: range[0],
    mediaEnd90k: range[1],
    initLength: Number(headers.get("x-nvr-init-length") || 0),
    transcoded: headers.get("x-nvr-transcoded") || "",
    segment: bytes.subarray(end + 4),
  };
}

// -- the player ------------------------------------------------------------------------

/**
 * Plays one stream's live.m4s into a <video>. `onState(state, detail)` reports
 * "connecting", "waiting" (connected, no frame yet), "playing", "stalled" (no frame for a
 * while), "offline" (the server says the camera is down, with its message; frames resume
 * on the same socket), "error" (with the message; a reconnect follows) and "unsupported".
 * `onFrame(info)` gets each message's parsed headers (wall time of the latest frame).
 */

/** A text message as an object with a `type` ("drop", or "error" with a `message`). */
function parseText(text) {
  try {
    const msg = JSON.parse(text);
    if (msg !== null && typeof msg === "object") return msg;
  } catch {
    // not JSON: an error message in plain text
  }
  return { type: "error", message: text };
}

export class LivePlayer {
  constructor(video, cameraUuid, stream, { onState = () => {}, onFrame = () => {}, transcode = false } = {}) {
    this.video = video;
    this.url = liveUrl(cameraUuid, stream, { transcode });
    this.onState = onState;
    this.onFrame = onFrame;
    this.closed = false;
    this.backoff = 1000;
    this.timer = null;
    this.ws = null;
    this.generation = 0;
    this.connect();
  }

  state(name, detail) {
    this.lastState = name;
    this.onState(name, detail);
  }

  connect() {
    if (this.closed) return;
    const gen = ++this.generation;
    this.resetMedia();
    this.state("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.fail(gen, String(e));
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.lastFrameAt = performance.now();
    ws.onopen = () => {
      if (gen === this.generation) this.state("waiting");
    };
    ws.onmessage = (ev) => {
      if (gen !== this.generation) return;
      if (typeof ev.data === "string") {
        const msg = parseText(ev.data);
        if (msg.type === "drop") {
          this.dropped = true; // the next frame is a key frame after a gap
        } else if (msg.type === "offline") {
          this.state("offline", { message: String(msg.message ?? "") });
        } else {
          this.errorText = String(msg.message ?? ev.data).trim();
        }
        return;
      }
      this.receive(gen, ev.data);
    };
    ws.onclose = (ev) => {
      if (gen !== this.generation) return;
      const why = this.errorText || ev.reason || (ev.code === 1006 ? "connection lost" : `closed (${ev.code})`);
      this.fail(gen, why);
    };
    ws.onerror = () => {}; // onclose follows with what we can know
    this.watchdog = setInterval(() => this.tick(gen), 500);
  }

  fail(gen, message) {
    if (gen !== this.generation || this.closed) return;
    this.teardown();
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    this.state("error", { message, retryInMs: wait });
    this.timer = setTimeout(() => this.connect(), wait);
  }

  teardown() {
    this.generation++;
    clearInterval(this.watchdog);
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) {
      this.ws.onclose = this.ws.onmessage = this.ws.onopen = null;
      try {
        this.ws.close();
      } catch (_) {
        // already closed
      }
      this.ws = null;
    }
    this.errorText = null;
  }

  close() {
    this.closed = true;
    this.teardown();
    this.resetMedia();
  }

  resetMedia() {
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
    this.mediaSource = null;
    this.sourceBuffer = null;
    this.queue = [];
    this.pending = null;
    this.entryId = null;
    this.inits = 0;
    this.mime = null;
    this.recId = null; // the recording of the last frame placed
    this.recBase = 0;
    this.recEnd = 0;
    this.dropped = false;
    this.video.removeAttribute("src");
    this.video.load();
  }

  async receive(gen, data) {
    let msg;
    try {
      msg = parseMessage(data);
    } catch (e) {
      this.fail(gen, e.message);
      return;
    }
    const now = performance.now();
    if (this.lastState === "playing") this.frameGapMs = 0.8 * (this.frameGapMs || 0) + 0.2 * (now - this.lastFrameAt);
    this.lastFrameAt = now;
    this.backoff = 1000;
    // messages are handled strictly in order: each waits for the one before
    const prev = this.pending || Promise.resolve();
    this.pending = prev.then(() => this.handle(gen, msg)).catch((e) => this.fail(gen, String(e.message || e)));
  }

  async handle(gen, msg) {
    if (gen !== this.generation) return;
    if (!this.mediaSource) await this.openMediaSource(msg);
    if (gen !== this.generation) return;
    if (msg.initLength) {
      // a converted stream: the init segment comes in the message
      const init = msg.segment.subarray(0, msg.initLength);
      msg.segment = msg.segment.subarray(msg.initLength);
      await this.useInit(msg, init, `transcoded ${++this.inits}`);
      if (gen !== this.generation) return;
    } else if (!msg.transcoded && msg.sampleEntryId !== this.entryId) {
      await this.switchInit(gen, msg);
      if (gen !== this.generation) return;
    }
    this.enqueue({ offset: this.place(msg) / 90000, data: msg.segment });
    this.dropped = false;
    if (this.lastState !== "playing") this.state("playing");
    this.onFrame(msg);
  }

  /** The message's position (90 kHz) on this connection's media timeline. */
  place(msg) {
    if (msg.recordingId !== this.recId) {
      const prevEnd = this.recId === null ? 0 : this.recBase + this.recEnd;
      this.recId = msg.recordingId;
      this.recBase = prevEnd - msg.mediaStart90k;
    }
    this.recEnd = msg.mediaEnd90k;
    return this.recBase + msg.mediaStart90k;
  }

  openMediaSource(msg) {
    const MS = window.ManagedMediaSource || window.MediaSource;
    if (!MS || !MS.isTypeSupported(msg.contentType)) {
      this.closed = true;
      this.teardown();
      this.state("unsupported", { message: `this browser cannot play ${msg.contentType}` });
      return Promise.reject(new Error("unsupported"));
    }
    this.mediaSource = new MS();
    this.objectUrl = URL.createObjectURL(this.mediaSource);
    this.video.disableRemotePlayback = true;
    this.video.src = this.objectUrl;
    return new Promise((resolve) => {
      this.mediaSource.addEventListener("sourceopen", () => resolve(), { once: true });
    });
  }

  async switchInit(gen, msg) {
    const resp = await fetch(initSegmentUrl(msg.sampleEntryId), { credentials: "same-origin" });
    if (!resp.ok) throw new Error(`init segment ${msg.sampleEntryId}: HTTP ${resp.status}`);
    const init = new Uint8Array(await resp.arrayBuffer());
    if (gen !== this.generation) return;
    await this.useInit(msg, init, msg.sampleEntryId);
  }

  async useInit(msg, init, entryId) {
    const gen = this.generation;
    if (!this.sourceBuffer) {
      this.sourceBuffer = this.mediaSource.addSourceBuffer(msg.contentType);
      this.sourceBuffer.mode = "segments";
      this.sourceBuffer.addEventListener("updateend", () => {
        this.maybeStart();
        this.pump();
      });
      this.sourceBuffer.addEventListener("error", () => this.fail(gen, "the browser rejected the video"));
    } else if (msg.contentType !== this.mime && this.sourceBuffer.changeType) {
      await this.idle();
      this.sourceBuffer.changeType(msg.contentType);
    }
    this.mime = msg.contentType;
    this.entryId = entryId;
    this.enqueue({ offset: null, data: init });
  }

  idle() {
    return new Promise((resolve) => {
      const check = () => {
        if (!this.sourceBuffer || (!this.sourceBuffer.updating && this.queue.length === 0)) resolve();
        else setTimeout(check, 10);
      };
      check();
    });
  }

  enqueue(item) {
    this.queue.push(item);
    this.pump();
  }

  /** Plays once a little video is buffered ahead: starting at the very newest frame
   * would stall on every late frame. The live-edge rule keeps that cushion later on. */
  maybeStart() {
    const v = this.video;
    const b = this.sourceBuffer?.buffered;
    if (!v.paused || !b || !b.length) return;
    if (b.end(b.length - 1) - v.currentTime >= CUSHION) v.play().catch(() => {});
  }

  pump() {
    const sb = this.sourceBuffer;
    if (!sb || sb.updating || this.queue.length === 0) return;
    if (this.mediaSource.readyState !== "open") return;
    const item = this.queue.shift();
    try {
      if (item.offset !== null) sb.timestampOffset = item.offset;
      sb.appendBuffer(item.data);
    } catch (e) {
      if (e.name === "QuotaExceededError") {
        this.queue.unshift(item);
        this.trim(2);
      } else {
        this.fail(this.generation, `appending video: ${e.message}`);
      }
    }
  }

  trim(keep = KEEP_SECONDS) {
    const sb = this.sourceBuffer;
    const v = this.video;
    if (!sb || sb.updating || !sb.buffered.length) return;
    const cut = v.currentTime - keep;
    if (cut > sb.buffered.start(0) + 1) {
      try {
        sb.remove(0, cut);
      } catch (_) {
        // retried at the next tick
      }
    }
  }

  /** Every 500 ms: stay near the newest frame, skip gaps, drop old video, notice stalls. */
  tick(gen) {
    if (gen !== this.generation) return;
    const v = this.video;
    const sb = this.sourceBuffer;
    if (sb && sb.buffered.length && !sb.updating) {
      const b = sb.buffered;
      const last = b.length - 1;
      const end = b.end(last);
      const t = v.currentTime;
      let at = -1; // the buffered range the playhead is in
      for (let i = 0; i < b.length; i++) if (t >= b.start(i) - 0.05 && t <= b.end(i)) at = i;
      if (at < 0 || end - t > LIVE_EDGE_SLACK) {
        v.currentTime = Math.max(b.start(last), end - CUSHION); // lost, or too far behind
      } else if (at < last && b.end(at) - t < 0.25) {
        v.currentTime = b.start(at + 1); // at a gap (frames dropped): over it
      }
      this.trim();
      this.maybeStart();
    }
    const silent = performance.now() - this.lastFrameAt;
    const stallMs =
      this.lastState === "waiting" ? FIRST_FRAME_MS : Math.max(STALL_MIN_MS, 3 * (this.frameGapMs || 0));
    if (silent > stallMs && (this.lastState === "playing" || this.lastState === "waiting")) {
      this.state("stalled", { silentMs: silent });
    }
  }
}
