// The live grid: 1, 1x2, 2x2 or 3x3 tiles (at first the smallest that shows every camera), each a camera and a stream (sub by default in
// grids, when the camera has one). Tiles reconnect by themselves and say clearly when
// their camera is down: at once when the live socket says so (`offline`), else from the
// stream's `nvrStatus`, refreshed by the session poll.

import { el, segmented } from "./dom.js";
import { formatTime } from "./format.js";
import { LivePlayer } from "./live.js";
import { allowSub, choose, convertedLabel, setAllowSub } from "./playability.js";

const LAYOUTS = { 1: 1, 2: 2, 4: 2, 9: 3 }; // tiles -> columns
const STORE = "nvr.live";

function load() {
  try {
    return JSON.parse(localStorage.getItem(STORE)) || {};
  } catch (_) {
    return {};
  }
}

function save(state) {
  localStorage.setItem(STORE, JSON.stringify(state));
}

export function renderLive(main, session) {
  const cameras = session.top.cameras;
  const saved = load();
  const state = {
    layout: LAYOUTS[saved.layout] ? saved.layout : [1, 2, 4, 9].find((n) => n >= cameras.length) || 9,
    tiles: Array.isArray(saved.tiles) ? saved.tiles : [],
  };
  const grid = el("div", { class: "grid", id: "live-grid" });
  const bar = el(
    "div",
    { class: "toolbar" },
    el("h1", {}, "Live"),
    segmented(
      "layout",
      "Layout",
      [
        ["1", "1", "one camera"],
        ["2", "1×2", "two cameras"],
        ["4", "2×2", "four cameras"],
        ["9", "3×3", "nine cameras"],
      ],
      String(state.layout),
      (v) => {
        state.layout = Number(v);
        save(state);
        build();
      },
    ),
  );
  const subBox = el("input", { type: "checkbox", id: "allow-sub", checked: allowSub() });
  subBox.addEventListener("change", () => {
    setAllowSub(subBox.checked);
    build();
  });
  bar.append(
    el(
      "label",
      { class: "check", title: "When this browser cannot play a camera's main stream: play its sub stream (if it can) instead of having the server convert the main stream" },
      subBox,
      " Sub stream instead of converting",
    ),
  );
  main.append(bar, grid);
  let tiles = [];

  function tileConfig(i) {
    const grid1 = state.layout === 1;
    const t = state.tiles[i] || {};
    const cam = cameras.find((c) => c.uuid === t.camera) || (t.camera === "" ? null : cameras[i]) || null;
    let stream = t.stream;
    if (!cam) return { cam: null, stream: null };
    if (!stream || !cam.streams[stream]) stream = !grid1 && cam.streams.sub ? "sub" : "main";
    if (!cam.streams[stream]) stream = Object.keys(cam.streams)[0];
    return { cam, stream };
  }

  function build() {
    for (const t of tiles) t.destroy();
    const n = state.layout;
    grid.className = `grid g${LAYOUTS[n]}`;
    grid.dataset.layout = String(n);
    tiles = [];
    grid.replaceChildren();
    for (let i = 0; i < n; i++) {
      const tile = new Tile(i, tileConfig(i), cameras, session, (cfg) => {
        state.tiles[i] = cfg;
        save(state);
      }, (camera) => {
        state.layout = 1;
        state.tiles[0] = { camera, stream: "main" };
        save(state);
        build();
        main.querySelector("#layout-1").checked = true;
      });
      tiles.push(tile);
      grid.append(tile.root);
    }
  }

  build();
  const unsubscribe = session.subscribe(() => tiles.forEach((t) => t.status()));
  return () => {
    unsubscribe();
    for (const t of tiles) t.destroy();
  };
}

class Tile {
  constructor(index, { cam, stream }, cameras, session, onChange, onExpand) {
    this.session = session;
    this.cam = cam;
    this.stream = stream;
    this.video = el("video", {
      muted: true,
      playsinline: true,
      "aria-label": cam ? `${cam.shortName} live` : "empty tile",
    });
    this.video.muted = true;
    this.overlay = el("div", { class: "overlay", role: "status", "aria-live": "polite" });
    this.clock = el("span", { class: "tile-clock" });
    this.pathBadge = el("span", { class: "path-badge", hidden: true });
    const camSelect = el(
      "select",
      { "aria-label": `Tile ${index + 1} camera` },
      el("option", { value: "" }, "—"),
      cameras.map((c) => el("option", { value: c.uuid, selected: cam && c.uuid === cam.uuid }, c.shortName)),
    );
    // the main/sub choice only for a camera that has both
    const single = (c) => !c || Object.keys(c.streams).length < 2;
    const streamSelect = el(
      "select",
      { "aria-label": `Tile ${index + 1} stream`, disabled: single(cam), hidden: single(cam) },
      ["main", "sub"].map((s) =>
        el("option", { value: s, selected: s === stream, disabled: !cam || !cam.streams[s] }, s),
      ),
    );
    const change = () => {
      const uuid = camSelect.value;
      const c = cameras.find((x) => x.uuid === uuid) || null;
      let s = streamSelect.value;
      if (c && !c.streams[s]) s = Object.keys(c.streams)[0];
      onChange({ camera: uuid, stream: s });
      this.replace(c, c ? s : null);
      streamSelect.disabled = single(c);
      streamSelect.hidden = single(c);
      for (const o of streamSelect.options) o.disabled = !c || !c.streams[o.value];
      streamSelect.value = s;
    };
    camSelect.addEventListener("change", change);
    streamSelect.addEventListener("change", change);
    const expand = el(
      "button",
      { type: "button", class: "icon", title: "Show alone", "aria-label": "Show this camera alone" },
      "⤢",
    );
    expand.addEventListener("click", () => this.cam && onExpand(this.cam.uuid));
    this.root = el(
      "figure",
      { class: "tile", dataset: { index: String(index) } },
      this.video,
      this.overlay,
      el("figcaption", {}, camSelect, streamSelect, this.pathBadge, this.clock, expand),
    );
    this.video.addEventListener("dblclick", () => this.cam && onExpand(this.cam.uuid));
    this.start();
  }

  replace(cam, stream) {
    this.destroy();
    this.cam = cam;
    this.stream = stream;
    this.video.setAttribute("aria-label", cam ? `${cam.shortName} live` : "empty tile");
    this.start();
  }

  start(forceConvert = false) {
    this.connState = null;
    this.pathBadge.hidden = true;
    delete this.root.dataset.path;
    if (!this.cam) {
      this.show("empty", "No camera");
      return;
    }
    // native, the sub stream or converted: asked of the browser before anything plays
    const top = this.session.top.cameras.find((c) => c.uuid === this.cam.uuid) || this.cam;
    const plan = choose(top, this.stream, { forceConvert });
    this.plan = plan;
    this.showPath(plan.label, plan.why, plan.path);
    this.player = new LivePlayer(this.video, this.cam.uuid, plan.stream, {
      transcode: plan.transcode,
      onState: (s, detail) => {
        if (s === "unsupported" && !plan.transcode) {
          // the codec was not known ahead (or the browser said yes, then no): convert
          this.destroy();
          this.start(true);
          return;
        }
        this.connState = s;
        this.connDetail = detail;
        this.status();
      },
      onFrame: (msg) => {
        this.clock.textContent = formatTime(msg.recordingStart90k + msg.mediaStart90k, this.session.tz);
        if (msg.transcoded && !this.sized) {
          this.sized = true;
          this.showPath(convertedLabel(Number(msg.transcoded.split("x")[1])), plan.why, plan.path);
        }
      },
    });
    this.sized = false;
  }

  /** Says which way the video plays ("native", "sub stream", "converted 720p") and why. */
  showPath(label, why, path) {
    this.pathBadge.textContent = label;
    this.pathBadge.title = `Plays ${label}: ${why}`;
    this.pathBadge.setAttribute("aria-label", `Plays ${label}: ${why}`);
    this.pathBadge.dataset.path = path;
    this.pathBadge.hidden = false;
    this.root.dataset.path = path;
  }

  /** The camera's recording state (from the poll) combined with the socket's. */
  status() {
    if (!this.cam) return;
    const top = this.session.top.cameras.find((c) => c.uuid === this.cam.uuid);
    const st = top?.streams?.[this.stream]?.nvrStatus;
    const down = st && (st.state === "backoff" || st.state === "idle");
    const tz = this.session.tz;
    if (this.connState === "playing") {
      this.show("playing", "");
      return;
    }
    if (this.connState === "unsupported") {
      this.show("down", "Cannot play", this.connDetail?.message);
      return;
    }
    if (this.connState === "offline") {
      // said by the server the moment the camera's session ended: no frozen frame
      const next = down && st.nextTry90k ? ` Next try at ${formatTime(st.nextTry90k, tz)}.` : "";
      this.show("down", "Camera offline", `${this.connDetail?.message || "not connected"}.${next}`);
      return;
    }
    if (down) {
      const why = st.lastError ? `${st.lastError}.` : "";
      const next = st.nextTry90k ? ` Next try at ${formatTime(st.nextTry90k, tz)}.` : "";
      this.show("down", "Camera offline", `${why}${next}`);
      return;
    }
    if (this.connState === "error") {
      const secs = Math.round((this.connDetail?.retryInMs || 0) / 1000);
      this.show("reconnecting", "Live view interrupted", `${this.connDetail?.message}. Retrying in ${secs} s…`);
      return;
    }
    if (this.connState === "stalled") {
      this.show("reconnecting", "No video for a few seconds…");
      return;
    }
    if (this.connState === "waiting") {
      this.show("connecting", st?.state === "connecting" ? "Camera connecting…" : "Waiting for video…");
      return;
    }
    this.show("connecting", "Connecting…");
  }

  show(kind, title, detail) {
    this.root.dataset.state = kind;
    this.overlay.replaceChildren(
      title ? el("strong", {}, title) : "",
      detail ? el("span", { class: "detail" }, detail) : "",
    );
    this.overlay.hidden = !title;
  }

  destroy() {
    if (this.player) this.player.close();
    this.player = null;
  }
}
