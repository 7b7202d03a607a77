// A month calendar of the days that have video (the union of the cameras' `days`),
// shaded by how much was recorded. Days are the server's (its time zone's) dates.

import { el } from "./dom.js";
import { formatDuration } from "./format.js";
import { UNITS_PER_SEC } from "./time.js";

const WEEKDAYS = ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"];

function pad(n) {
  return String(n).padStart(2, "0");
}

function key(y, m, d) {
  return `${y}-${pad(m)}-${pad(d)}`;
}

/** Map day -> the most video any camera's `stream` has that day (90k units). */
export function daysWithVideo(cameras, stream) {
  const days = new Map();
  for (const c of cameras) {
    for (const [d, v] of Object.entries(c.streams[stream]?.days || {})) {
      days.set(d, Math.max(days.get(d) || 0, v.totalDuration90k));
    }
  }
  return days;
}

export class Calendar {
  constructor({ onPick }) {
    this.onPick = onPick;
    this.days = new Map(); // YYYY-MM-DD -> {duration90k, cameras}
    this.selected = null;
    this.today = null;
    this.month = null; // [year, month 1-12]
    this.root = el("section", { class: "calendar card", "aria-label": "Days with video" });
  }

  /** days: Map day -> total duration (max over cameras, as a share of the day). */
  update(days, selected, today) {
    this.days = days;
    this.selected = selected;
    this.today = today;
    if (!this.month || (selected && !this.shows(selected))) {
      const [y, m] = (selected || today).split("-").map(Number);
      this.month = [y, m];
    }
    this.render();
  }

  shows(day) {
    const [y, m] = day.split("-").map(Number);
    return this.month && this.month[0] === y && this.month[1] === m;
  }

  step(delta) {
    let [y, m] = this.month;
    m += delta;
    if (m < 1) [y, m] = [y - 1, 12];
    if (m > 12) [y, m] = [y + 1, 1];
    this.month = [y, m];
    this.render();
  }

  render() {
    const [y, m] = this.month;
    const title = new Intl.DateTimeFormat("en-GB", { month: "long", year: "numeric", timeZone: "UTC" }).format(
      new Date(Date.UTC(y, m - 1, 15)),
    );
    const prev = el("button", { type: "button", class: "icon", "aria-label": "Previous month" }, "‹");
    const next = el("button", { type: "button", class: "icon", "aria-label": "Next month" }, "›");
    prev.addEventListener("click", () => this.step(-1));
    next.addEventListener("click", () => this.step(1));
    const grid = el("div", { class: "cal-grid", role: "group", "aria-label": title });
    for (const w of WEEKDAYS) grid.append(el("span", { class: "cal-wd", "aria-hidden": "true" }, w));
    const first = new Date(Date.UTC(y, m - 1, 1)).getUTCDay(); // 0 = Sunday
    const lead = (first + 6) % 7;
    for (let i = 0; i < lead; i++) grid.append(el("span", {}));
    const n = new Date(Date.UTC(y, m, 0)).getUTCDate();
    for (let d = 1; d <= n; d++) {
      const k = key(y, m, d);
      const info = this.days.get(k);
      const share = info ? Math.min(1, info / (86400 * UNITS_PER_SEC)) : 0;
      const b = el(
        "button",
        {
          type: "button",
          class: `cal-day${info ? " has-video" : ""}${k === this.today ? " today" : ""}`,
          "aria-pressed": String(k === this.selected),
          "aria-label": `${k}${info ? `, ${formatDuration(info)} of video` : ", no video"}`,
          dataset: { day: k },
        },
        String(d),
      );
      if (info) b.style.setProperty("--share", (0.25 + 0.75 * share).toFixed(2));
      b.addEventListener("click", () => this.onPick(k));
      grid.append(b);
    }
    this.root.replaceChildren(
      el("div", { class: "cal-head" }, prev, el("h2", {}, title), next),
      grid,
    );
  }
}
