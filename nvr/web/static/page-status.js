// Status: each camera's streams (recording / connecting / reconnecting with the last
// error, from the `nvrStatus` extension), what they hold against their budget, and each
// sample-file directory (the `nvrSampleFileDirs` extension): its path, its streams, their
// use against their budgets, the disk's free space and size, a warning when the budgets
// are more than the disk holds, and the storage forecast (with each stream's
// `nvrForecast`): how many days each budget and disk hold at the last day's bitrate.
// Each archive (the `archives` extension): its uploader's state (uploading, retrying
// since when with the last error, stopped), the alarm of skipped recordings, the backlog
// and the oldest recording not archived yet, what it uploaded since the daemon started.
// Refreshed by the session's poll.

import { el, stateBadge } from "./dom.js";
import { formatBytes, formatDuration, formatTime } from "./format.js";
import { dayOf } from "./time.js";

function days(d) {
  if (d == null) return "–";
  return d < 1 ? `${(d * 24).toFixed(1)} h` : `${d.toFixed(1)} days`;
}

function forecastText(f) {
  if (!f || f.bytesPerSec == null) return "no recording in the last day";
  return `${((f.bytesPerSec * 8) / 1e6).toFixed(2)} Mbit/s: budget holds ${days(f.budgetDays)}, holds ${days(f.heldDays)} now`;
}

function floorText(d) {
  if (d.freeBytes == null) return "free space not measured (no floor, or not recording)";
  if (d.floorDays == null) return `${formatBytes(d.freeBytes)} free; the floor is never reached at these rates`;
  if (d.floorDays === 0) return `${formatBytes(d.freeBytes)} free: the floor is deleting now`;
  return `${formatBytes(d.freeBytes)} free; the floor starts deleting in ${days(d.floorDays)}`;
}

function meter(used, budget, label) {
  const share = budget ? Math.min(1, used / budget) : 0;
  const m = el("meter", { min: "0", max: "1", value: share.toFixed(3), "aria-label": label });
  return el("span", { class: "meter" }, m, el("span", {}, `${formatBytes(used)} of ${formatBytes(budget)}`));
}

function archiveBadge(st, backlog) {
  if (st.state === "retrying") return el("span", { class: "badge backoff" }, "retrying");
  if (st.state === "ok" && backlog.recordings) return el("span", { class: "badge recording" }, "uploading");
  if (st.state === "ok") return el("span", { class: "badge recording" }, "up to date");
  return el("span", { class: "badge idle" }, st.state);
}

function archiveRow(a, tz) {
  const st = a.status || { state: "stopped" };
  const b = a.backlog;
  const detail = [];
  if (st.failingSince90k) detail.push(`since ${formatTime(st.failingSince90k, tz)}`);
  if (st.attempts) detail.push(`${st.attempts} attempts`);
  const oldest =
    b.oldestStartTime90k != null
      ? `oldest not archived: ${dayOf(b.oldestStartTime90k, tz)} ${formatTime(b.oldestStartTime90k, tz)}`
      : "everything is archived";
  return el(
    "tr",
    { dataset: { archive: a.uuid } },
    el("th", { scope: "row" }, a.shortName),
    el("td", { class: "archive-state" }, archiveBadge(st, b),
      el("span", { class: "muted small" }, ` ${detail.join(", ")}`),
      st.lastError ? el("div", { class: "last-error" }, `Last error: ${st.lastError}`) : null,
      st.skippedRecordings
        ? el("div", { class: "last-error archive-alarm", role: "alert" },
            `${st.skippedRecordings} recordings not archived: ${st.lastSkip}`)
        : null),
    el("td", { class: "archive-backlog" }, `${b.recordings} recordings, ${formatBytes(b.bytes)}`,
      el("div", { class: "muted small" }, oldest)),
    el("td", { class: "archive-uploaded" },
      st.uploadedBytes != null ? `${formatBytes(st.uploadedBytes)} (${st.uploadedRecordings} recordings)` : "–",
      a.neverArchivedRecordings
        ? el("div", { class: "muted small" }, `${a.neverArchivedRecordings} deleted locally before they were archived`)
        : null),
  );
}

function archiveSections(top) {
  const archives = top.archives || [];
  if (!archives.length) return [];
  return [
    el(
      "section",
      { class: "card archives", "aria-label": "Archives" },
      el("h2", {}, "Archives"),
      el(
        "table",
        {},
        el("thead", {}, el("tr", {}, ["Archive", "State", "Backlog", "Uploaded since start"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, archives.map((a) => archiveRow(a, top.timeZoneName))),
      ),
    ),
  ];
}

export function renderStatus(main, session) {
  const body = el("div", { class: "status" });
  main.append(el("div", { class: "toolbar" }, el("h1", {}, "Status")), body);

  function render(top) {
    const tz = top.timeZoneName;
    const dirs = new Map();
    const cams = top.cameras.map((c) => {
      const streams = Object.entries(c.streams).map(([type, s]) => {
        const dirKey = s.nvrSampleFileDir ? String(s.nvrSampleFileDir.id) : "?";
        const d = dirs.get(dirKey) || { dir: s.nvrSampleFileDir, used: 0, budget: 0, streams: [] };
        d.used += s.fsBytes ?? s.totalSampleFileBytes;
        d.budget += s.retainBytes;
        d.streams.push(`${c.shortName}/${type}`);
        dirs.set(dirKey, d);
        const st = s.nvrStatus;
        const detail = [];
        if (st?.since90k) detail.push(`since ${formatTime(st.since90k, tz)}`);
        if (st?.state === "backoff" && st.nextTry90k) detail.push(`next try ${formatTime(st.nextTry90k, tz)}`);
        const range =
          s.minStartTime90k != null
            ? `${dayOf(s.minStartTime90k, tz)} ${formatTime(s.minStartTime90k, tz)} → ${dayOf(s.maxEndTime90k, tz)} ${formatTime(s.maxEndTime90k, tz)}`
            : "nothing recorded yet";
        return el(
          "tr",
          { dataset: { stream: type } },
          el("th", { scope: "row" }, type),
          el("td", {}, stateBadge(st), el("span", { class: "muted small" }, ` ${detail.join(", ")}`),
            st?.lastError ? el("div", { class: "last-error" }, `Last error: ${st.lastError}`) : null),
          el("td", {}, formatDuration(s.totalDuration90k || 0), el("div", { class: "muted small" }, range)),
          el("td", {}, meter(s.fsBytes ?? s.totalSampleFileBytes, s.retainBytes, `${c.shortName} ${type} disk use`),
            s.nvrRetention?.protectedBytes
              ? el("div", { class: "muted small" }, `${formatBytes(s.nvrRetention.protectedBytes)} protected` +
                  (s.nvrRetention.state === "protectedOverBudget" ? ": over the budget, nothing deleted for size" : ""))
              : null),
          el("td", { class: "forecast" }, forecastText(s.nvrForecast)),
        );
      });
      return el(
        "article",
        { class: "card cam-status", dataset: { camera: c.uuid } },
        el("h2", {}, c.shortName),
        c.description ? el("p", { class: "muted" }, c.description) : null,
        el(
          "table",
          {},
          el("thead", {}, el("tr", {}, ["Stream", "State", "Recorded", "Disk", "Forecast"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, streams),
        ),
      );
    });
    const dirRows = (top.nvrSampleFileDirs || []).map((d) => {
      const streams = dirs.get(String(d.id))?.streams || [];
      // (the path is only for those who may read camera configurations)
      const name = d.path || `directory ${d.id}`;
      const disk =
        d.totalBytes != null ? `${formatBytes(d.freeBytes)} free of ${formatBytes(d.totalBytes)}` : "not measured";
      return el(
        "tr",
        { dataset: { dir: String(d.id) } },
        el("th", { scope: "row" }, name),
        el("td", {}, streams.join(", ")),
        el("td", {}, meter(d.fsBytes, d.retainBytes, `${name}: use of its streams' budgets`)),
        el("td", { class: "disk-space" }, disk,
          d.warning ? el("div", { class: "last-error budget-warning", role: "alert" }, `Warning: ${d.warning}`) : null),
        el("td", { class: "forecast" }, [forecastText(d), el("div", { class: "muted small" }, floorText(d))]),
      );
    });
    body.replaceChildren(
      el("section", { class: "cams" }, cams),
      el(
        "section",
        { class: "card dirs", "aria-label": "Disk use per directory" },
        el("h2", {}, "Disk use per directory"),
        el(
          "table",
          {},
          el("thead", {}, el("tr", {}, ["Directory", "Streams", "Used of budget", "Disk", "Forecast"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, dirRows),
        ),
      ),
      ...archiveSections(top),
      el("p", { class: "muted small" }, `Server ${top.serverVersion || ""}, time zone ${tz}.`),
    );
  }

  render(session.top);
  return session.subscribe(render); // the unsubscribe is the page's cleanup
}
