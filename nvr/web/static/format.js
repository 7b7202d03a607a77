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

function inUnits(n, base, units) {
  let k = 0;
  while (k < units.length - 1 && n >= base ** (k + 2)) k++;
  const unit = base ** (k + 1);
  const number = (n / unit).toFixed(2).replace(/\.?0+$/, "");
  return [`${number} ${units[k]}`, (n * 100) % unit === 0];
}

/** Bytes for a person, as `nvr.base.units.format_size` writes them: at most two decimals,
 * in binary units (GiB) when that is exact and the decimal text is not, else in decimal
 * ones (GB, as disks are sold): a budget typed as `2TiB` reads "2 TiB", one typed `1G`
 * "1 GB". */
export function formatBytes(n) {
  if (n < 1000) return `${n} B`;
  const [decimal, decimalExact] = inUnits(n, 1000, ["kB", "MB", "GB", "TB", "PB"]);
  if (decimalExact || n < 1024) return decimal;
  const [binary, binaryExact] = inUnits(n, 1024, ["KiB", "MiB", "GiB", "TiB", "PiB"]);
  return binaryExact ? binary : decimal;
}
