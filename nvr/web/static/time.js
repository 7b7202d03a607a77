// 90 kHz time in the browser: the API's unit for instants and durations, conversions to
// and from JavaScript milliseconds, and the server's calendar (days in its IANA zone).

export const UNITS_PER_SEC = 90000;

export function toMillis(t90k) {
  return t90k / 90;
}

export function fromMillis(ms) {
  return Math.round(ms * 90);
}

export function now90k() {
  return fromMillis(Date.now());
}

const partsFormatters = new Map();

/** The calendar fields (year ... second, as strings) of instant `ms` in zone `tz`. */
function zoneParts(ms, tz) {
  let f = partsFormatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    partsFormatters.set(tz, f);
  }
  return Object.fromEntries(f.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
}

/** Milliseconds to add to UTC to get the zone's local time at instant `ms`. */
export function tzOffsetMs(ms, tz) {
  const p = zoneParts(ms, tz);
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The `YYYY-MM-DD` day of an instant in zone `tz` (the keys of a stream's `days`). */
export function dayOf(t90k, tz) {
  const p = zoneParts(toMillis(t90k), tz);
  return `${p.year}-${p.month}-${p.day}`;
}

/** [start, end) of a local day in zone `tz`, for a day no stream reports bounds of. */
export function dayBounds(day, tz) {
  const [y, m, d] = day.split("-").map(Number);
  const local = (yy, mm, dd) => {
    const guess = Date.UTC(yy, mm - 1, dd);
    let t = guess - tzOffsetMs(guess, tz);
    t = guess - tzOffsetMs(t, tz);
    return fromMillis(t);
  };
  const next = new Date(Date.UTC(y, m - 1, d + 1));
  return [local(y, m, d), local(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate())];
}
