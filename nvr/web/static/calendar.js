// A month calendar of the days that have video (the union of the cameras' `days`),
// shaded by how much was recorded. Days are the server's (its time zone's) dates. The
// month is a WAI-ARIA grid: one tab stop (the selected day), arrows move by a day or a
// week, Home/End to the week's ends, PageUp/PageDown by a month, Enter or Space picks.

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
    this.focusDay = null; // the day holding the grid's tab stop
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

  /** Arrow-key navigation in the grid: moves the tab stop (and the month) and focuses it. */
  key(e, k) {
    const [y, m, d] = k.split("-").map(Number);
    const date = new Date(Date.UTC(y, m - 1, d));
    const wd = (date.getUTCDay() + 6) % 7;
    const days = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -7, ArrowDown: 7, Home: -wd, End: 6 - wd }[e.key];
    if (days !== undefined) {
      date.setUTCDate(date.getUTCDate() + days);
    } else if (e.key === "PageUp" || e.key === "PageDown") {
      const n = e.key === "PageUp" ? -1 : 1;
      const last = new Date(Date.UTC(y, m - 1 + n + 1, 0)).getUTCDate();
      date.setUTCFullYear(y, m - 1 + n, Math.min(d, last));
    } else {
      return;
    }
    e.preventDefault();
    const nk = key(date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate());
    this.focusDay = nk;
    this.month = [date.getUTCFullYear(), date.getUTCMonth() + 1];
    this.render();
    this.root.querySelector(`[data-day="${nk}"]`)?.focus();
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
    const grid = el("div", { class: "cal-grid", role: "grid", "aria-label": title });
    grid.append(el("div", { role: "row", class: "cal-row" },
      WEEKDAYS.map((w) => el("span", { class: "cal-wd", role: "columnheader" }, w))));
    const first = new Date(Date.UTC(y, m - 1, 1)).getUTCDay(); // 0 = Sunday
    const lead = (first + 6) % 7;
    const n = new Date(Date.UTC(y, m, 0)).getUTCDate();
    const inMonth = (k) => k && this.shows(k);
    const stop = [this.focusDay, this.selected, this.today].find(inMonth) || key(y, m, 1);
    let row = el("div", { role: "row", class: "cal-row" });
    for (let i = 0; i < lead; i++) row.append(el("span", { role: "gridcell" }));
    for (let d = 1; d <= n; d++) {
      const k = key(y, m, d);
      const info = this.days.get(k);
      const share = info ? Math.min(1, info / (86400 * UNITS_PER_SEC)) : 0;
      const b = el(
        "button",
        {
          type: "button",
          role: "gridcell",
          tabindex: k === stop ? "0" : "-1",
          class: `cal-day${info ? " has-video" : ""}${k === this.today ? " today" : ""}`,
          "aria-selected": String(k === this.selected),
          "aria-current": k === this.today ? "date" : null,
          "aria-label": `${k}${info ? `, ${formatDuration(info)} of video` : ", no video"}`,
          dataset: { day: k },
        },
        String(d),
      );
      if (info) b.style.setProperty("--share", (0.25 + 0.75 * share).toFixed(2));
      b.addEventListener("click", () => {
        this.focusDay = k;
        this.onPick(k);
      });
      b.addEventListener("keydown", (e) => this.key(e, k));
      row.append(b);
      if ((lead + d) % 7 === 0 || d === n) {
        grid.append(row);
        row = el("div", { role: "row", class: "cal-row" });
      }
    }
    this.root.replaceChildren(
      el("div", { class: "cal-head" }, prev, el("h2", {}, title), next),
      grid,
    );
  }
}
