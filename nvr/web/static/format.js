// Text for people: instants in the server's time zone, days, durations and byte counts.

import { toMillis, UNITS_PER_SEC } from "./time.js";

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

/** A `YYYY-MM-DD` day key as "Sun, 22 Nov 2026". */
export function formatDay(dayKey) {
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
