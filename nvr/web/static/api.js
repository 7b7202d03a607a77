// The server's public API, used exactly as a third-party client would: JSON requests
// with `Accept: application/json`, the `s` session cookie (HttpOnly, sent by the
// browser), and the CSRF token from `/api/` `user.session.csrf` on state-changing POSTs.

export const UNITS_PER_SEC = 90000;

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

export async function getJson(path, params) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) url.searchParams.set(k, String(v));
  const resp = await fetch(url, {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  return (await check(resp)).json();
}

async function postJson(path, body) {
  const resp = await fetch(path, {
    method: "POST",
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

export function login(username, password) {
  return postJson("/api/login", { username, password });
}

export function logout(csrf) {
  return postJson("/api/logout", { csrf });
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

export function viewMp4Url(cameraUuid, stream, specs) {
  const q = specs.map((s) => `s=${encodeURIComponent(s)}`).join("&");
  return `/api/cameras/${cameraUuid}/${stream}/view.mp4?${q}`;
}

export function liveUrl(cameraUuid, stream) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}/api/cameras/${cameraUuid}/${stream}/live.m4s`;
}

export function initSegmentUrl(id) {
  return `/api/init/${id}.mp4`;
}

// -- time ----------------------------------------------------------------------------

export function toMillis(t90k) {
  return t90k / 90;
}

export function fromMillis(ms) {
  return Math.round(ms * 90);
}

export function now90k() {
  return fromMillis(Date.now());
}

const formatters = new Map();

function formatter(tz, kind) {
  const key = `${tz}|${kind}`;
  let f = formatters.get(key);
  if (!f) {
    const base = { timeZone: tz, hourCycle: "h23" };
    const opts = {
      time: { ...base, hour: "2-digit", minute: "2-digit", second: "2-digit" },
      timeMs: {
        ...base,
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
        fractionalSecondDigits: 3,
      },
      hm: { ...base, hour: "2-digit", minute: "2-digit" },
      date: { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" },
      long: {
        timeZone: tz,
        weekday: "short",
        year: "numeric",
        month: "short",
        day: "numeric",
      },
    }[kind];
    f = new Intl.DateTimeFormat("en-GB", opts);
    formatters.set(key, f);
  }
  return f;
}

/** `HH:MM:SS` (kind "time"), `HH:MM:SS.mmm` ("timeMs"), `HH:MM` ("hm") in zone `tz`. */
export function formatTime(t90k, tz, kind = "time") {
  return formatter(tz, kind).format(new Date(toMillis(t90k)));
}

/** The `YYYY-MM-DD` day of an instant in zone `tz` (the keys of a stream's `days`). */
export function dayOf(t90k, tz) {
  const parts = formatter(tz, "date").formatToParts(new Date(toMillis(t90k)));
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

export function formatDay(dayKey, tz) {
  // noon of that day in UTC lies within the same calendar day in every zone within ±12 h
  const [y, m, d] = dayKey.split("-").map(Number);
  return new Intl.DateTimeFormat("en-GB", {
    timeZone: "UTC",
    weekday: "short",
    year: "numeric",
    month: "short",
    day: "numeric",
  }).format(new Date(Date.UTC(y, m - 1, d, 12)));
}

export function formatDuration(d90k) {
  let s = Math.round(d90k / UNITS_PER_SEC);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m) return `${m} min ${String(s).padStart(2, "0")} s`;
  return `${s} s`;
}

export function formatBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}
