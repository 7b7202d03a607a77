// Settings, storage: each sample-file directory with its path, the streams in it, their
// use against their budgets, the disk's free space and size, the warning when the budgets
// exceed the disk, and the forecast (`nvrSampleFileDirs` of `/api/`); adding a directory
// by path, removing one no stream uses (the server refuses otherwise, saying why).

import * as api from "./api.js";
import { el, toast } from "./dom.js";
import { field, FieldErrors, input } from "./forms.js";
import { formatBytes } from "./format.js";

function days(d) {
  if (d == null) return "–";
  return d < 1 ? `${(d * 24).toFixed(1)} h` : `${d.toFixed(1)} days`;
}

export function renderStorageSettings(body, session) {
  async function reload() {
    const [top, dirs] = await Promise.all([session.refresh(), api.dirs()]);
    show(top, dirs);
  }

  function show(top, dirs) {
    const info = new Map((top.nvrSampleFileDirs || []).map((d) => [d.id, d]));
    const names = new Map();
    for (const c of top.cameras) for (const [t, s] of Object.entries(c.streams)) names.set(s.id, `${c.shortName} ${t}`);
    const rows = dirs.map((d) => {
      const i = info.get(d.id) || {};
      const error = el("p", { class: "field-error", role: "alert", hidden: "" });
      const remove = el("button", { type: "button", class: "danger", disabled: d.streams.length ? "" : null,
        title: d.streams.length ? "Streams record here: move or remove them first" : null }, "Remove");
      remove.addEventListener("click", async () => {
        remove.disabled = true;
        try {
          await api.deleteDir(d.id, session.csrf);
          toast(`Removed ${d.path}.`);
          await reload();
        } catch (e) {
          error.textContent = e.message;
          error.hidden = false;
          remove.disabled = false;
        }
      });
      const disk = i.totalBytes != null ? `${formatBytes(i.freeBytes)} free of ${formatBytes(i.totalBytes)}` : "not measured";
      const forecast = i.bytesPerSec != null
        ? `${((i.bytesPerSec * 8) / 1e6).toFixed(2)} Mbit/s: budgets hold ${days(i.budgetDays)}`
        : "no recording in the last day";
      return el(
        "tr",
        { dataset: { dir: String(d.id) } },
        el("th", { scope: "row", class: "url" }, d.path),
        el("td", {}, d.streams.map((s) => names.get(s) || `stream ${s}`).join(", ") || el("span", { class: "muted" }, "none")),
        el("td", {}, `${formatBytes(i.fsBytes ?? d.totalSampleFileBytes)} of ${formatBytes(i.retainBytes ?? 0)}`),
        el("td", { class: "disk-space" }, disk,
          i.warning ? el("div", { class: "last-error budget-warning", role: "alert" }, `Warning: ${i.warning}`) : null),
        el("td", { class: "forecast" }, forecast),
        el("td", {}, remove, error),
      );
    });
    const errors = new FieldErrors(el("p", { class: "field-error form-error", role: "alert", hidden: "" }));
    const path = errors.add(["path", "/"], field("Path", input({ name: "path", placeholder: "/media/disk2/nvr", required: "" }),
      "An empty directory (or one to create) on the disk to record to."));
    const add = el("button", { type: "submit", class: "primary" }, "Add directory");
    const form = el("form", { class: "card settings-form", id: "dir-form", novalidate: "" },
      el("h2", {}, "Add a directory"), path.wrap, errors.general, el("div", { class: "actions" }, add));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      add.disabled = true;
      errors.clear();
      try {
        await api.addDir(path.input.value.trim(), session.csrf);
        toast(`Added ${path.input.value.trim()}.`);
        await reload();
      } catch (err) {
        errors.show(err.message);
      } finally {
        add.disabled = false;
      }
    });
    body.replaceChildren(
      el("section", { class: "card" },
        el("h2", {}, "Sample-file directories"),
        el("div", { class: "table-scroll" },
          el("table", {},
            el("thead", {}, el("tr", {}, ["Path", "Streams", "Used of budgets", "Disk", "Forecast", ""].map((h) => el("th", { scope: "col" }, h)))),
            el("tbody", {}, rows)))),
      form,
    );
  }

  body.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  reload().catch((e) => body.replaceChildren(el("p", { class: "error" }, `Cannot load the directories: ${e.message}`)));
  return null;
}
