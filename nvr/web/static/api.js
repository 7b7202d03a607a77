// The HTTP client of the server's public API, used exactly as a third-party client would:
// JSON requests with `Accept: application/json`, the `s` session cookie (HttpOnly, sent
// by the browser), the CSRF token from `/api/` `user.session.csrf` in state-changing
// POSTs, and failures as `ApiError` (the status and the server's one-line reason). It
// also spells the API's media URLs (`view.mp4` with its `s=` grammar, `live.m4s`, init
// segments), which the browser fetches itself through `<video>` and WebSocket.
// Nothing else belongs here: times are in `time.js`, text for people in `format.js`.

export class ApiError extends Error {
  constructor(status, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
  }
}

async function check(resp) {
  if (resp.ok) return resp;
  let text = "";
  try {
    text = (await resp.text()).trim();
  } catch (_) {
    // the body is only for the message
  }
  throw new ApiError(resp.status, text || `${resp.status} ${resp.statusText}`);
}

async function getJson(path, params) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) url.searchParams.set(k, String(v));
  const resp = await fetch(url, {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  return (await check(resp)).json();
}

async function postJson(path, body, method = "POST") {
  const resp = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body),
  });
  return check(resp);
}

/** `GET /api/?days=true`: cameras, streams (with `days` and `nvrStatus`), permissions
 * and, when logged in, `user.session.csrf`. Throws an ApiError 401 when a login is needed. */
export function topLevel({ cameraConfigs = false } = {}) {
  const params = { days: "true" };
  if (cameraConfigs) params.cameraConfigs = "true";
  return getJson("/api/", params);
}

/** One row per recording (`split90k=1` stops the coalescing of a run's recordings), so
 * the UI knows every recording boundary (previous/next). */
export function recordings(cameraUuid, stream, startTime90k, endTime90k) {
  return getJson(`/api/cameras/${cameraUuid}/${stream}/recordings`, {
    startTime90k,
    endTime90k,
    split90k: 1,
  });
}

/** `GET /api/signals` over [start, end): each signal's state at `start`, then its
 * changes, as parallel arrays `signalIds`, `states`, `times90k` (a first page; a day
 * has fewer changes than a page holds for any signal nvr writes). */
export function signals(startTime90k, endTime90k) {
  return getJson("/api/signals", { startTime90k, endTime90k });
}

/** nvr's motion search (an extension; absent on servers without it: 404): the spans
 * in which region `cells` (64 hex digits, a 16 x 16 bitmap; omitted: the whole picture)
 * moved in [start, end), newest first, as `{stream, spans: [{startTime90k, endTime90k,
 * recordingIds, peak}], nextEndTime90k?}`. */
export function motionSpans(cameraUuid, { startTime90k, endTime90k, cells, minFraction, limit }) {
  const params = { startTime90k, endTime90k };
  if (cells) params.cells = cells;
  if (minFraction) params.minFraction = minFraction;
  if (limit) params.limit = limit;
  return getJson(`/api/cameras/${cameraUuid}/motion`, params);
}

export function login(username, password) {
  return postJson("/api/login", { username, password });
}

export function logout(csrf) {
  return postJson("/api/logout", { csrf });
}

// -- protected ranges (an nvr extension) ---------------------------------------------

/** The camera's active protected ranges, oldest first. */
export async function protectedRanges(cameraUuid) {
  return (await getJson(`/api/cameras/${cameraUuid}/protect`)).ranges;
}

/** Protects [startTime90k, endTime90k) of the camera from retention (`protectVideo`). */
export async function protect(cameraUuid, startTime90k, endTime90k, reason, csrf) {
  const resp = await postJson(`/api/cameras/${cameraUuid}/protect`, {
    startTime90k,
    endTime90k,
    reason,
    csrf,
  });
  return resp.json();
}

export function unprotect(cameraUuid, id, csrf) {
  return postJson(`/api/cameras/${cameraUuid}/protect/${id}`, { csrf }, "DELETE");
}

/** The camera's redactions (tombstones, every stream; `redactVideo`). */
export async function redactions(cameraUuid) {
  return (await getJson(`/api/cameras/${cameraUuid}/redactions`)).redactions;
}

// -- configuration (nvr extensions, `adminConfig`) and users (`adminUsers`) ----------

async function sendJson(path, body, method = "POST") {
  const resp = await postJson(path, body, method);
  return resp.status === 204 ? null : resp.json();
}

/** `POST /api/nvr/cameras` -> `{uuid, id}`. */
export function addCamera(camera, csrf) {
  return sendJson("/api/nvr/cameras", { camera, csrf });
}

export function updateCamera(uuid, update, csrf) {
  return sendJson(`/api/nvr/cameras/${uuid}`, { update, csrf }, "PATCH");
}

/** -> `{recordings}`: how many were deleted with it. */
export function deleteCamera(uuid, deleteRecordings, csrf) {
  return sendJson(`/api/nvr/cameras/${uuid}`, { deleteRecordings, unprotect: deleteRecordings, csrf }, "DELETE");
}

/** The server opens `url` (`{url, username?, password?, rtspTransport?, camera?}`) ->
 * `{codec, codecName, width, height, frameRate, snapshot}` or `{error}`. */
export function testCamera(body, csrf) {
  return sendJson("/api/nvr/cameras/test", { ...body, csrf });
}

export async function dirs() {
  return (await getJson("/api/nvr/dirs")).dirs;
}

export function addDir(path, csrf) {
  return sendJson("/api/nvr/dirs", { path, csrf });
}

export function deleteDir(id, csrf) {
  return sendJson(`/api/nvr/dirs/${id}`, { csrf }, "DELETE");
}

export async function users() {
  return (await getJson("/api/users/")).users;
}

export function addUser(user, csrf) {
  return sendJson("/api/users/", { user, csrf });
}

export function updateUser(id, update, csrf) {
  return sendJson(`/api/users/${id}`, { update, csrf }, "PATCH");
}

export function deleteUser(id, csrf) {
  return sendJson(`/api/users/${id}`, { csrf }, "DELETE");
}

// -- media URLs ----------------------------------------------------------------------

/** One `s=` value: `START_ID[-END_ID][@OPEN_ID][.[REL_START]-[REL_END]]`. */
export function segmentSpec(row, relStart, relEnd) {
  let s = String(row.startId);
  if (row.endId !== undefined && row.endId !== row.startId) s += `-${row.endId}`;
  if (row.openId !== undefined) s += `@${row.openId}`;
  if (relStart !== undefined || relEnd !== undefined) {
    s += `.${relStart ? Math.round(relStart) : ""}-${relEnd !== undefined ? Math.round(relEnd) : ""}`;
  }
  return s;
}

/** `view.mp4` of `specs` (`s=` values); `transcode`: as H.264 (`transcode=h264`). */
export function viewMp4Url(cameraUuid, stream, specs, { transcode = false } = {}) {
  const q = specs.map((s) => `s=${encodeURIComponent(s)}`).join("&");
  return `/api/cameras/${cameraUuid}/${stream}/view.mp4?${q}${transcode ? "&transcode=h264" : ""}`;
}

/** `GET /api/export`: one signed `.zip` of `ranges` ([start, end) pairs) of each camera's
 * `stream`, streamed as it is made (a link downloads it). */
export function exportUrl(cameraUuids, stream, ranges) {
  const q = [
    ...cameraUuids.map((u) => `camera=${encodeURIComponent(u)}`),
    ...ranges.map(([a, b]) => `range=${Math.round(a)}-${Math.round(b)}`),
    `stream=${encodeURIComponent(stream)}`,
  ];
  return `/api/export?${q.join("&")}`;
}

/** `thumb.jpg`: the frame showing at `t90k` (or, with `keyFrame`, the key frame before
 * it), `width` px wide. */
export function thumbUrl(cameraUuid, stream, t90k, width, keyFrame = false) {
  const k = keyFrame ? "&keyFrame=true" : "";
  return `/api/cameras/${cameraUuid}/${stream}/thumb.jpg?time90k=${Math.round(t90k)}&width=${width}${k}`;
}

export function liveUrl(cameraUuid, stream, { transcode = false } = {}) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const q = transcode ? "?transcode=h264" : "";
  return `${proto}//${location.host}/api/cameras/${cameraUuid}/${stream}/live.m4s${q}`;
}

export function initSegmentUrl(id) {
  return `/api/init/${id}.mp4`;
}
