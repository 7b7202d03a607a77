// Settings, cameras: the list (name, streams and their URLs, budgets, directory, the
// directory's warning when budgets exceed the disk), a form to add or edit one (main and
// optional sub stream), its "test" button (the server opens the URL: `POST
// /api/nvr/cameras/test`, which answers a snapshot, codec, resolution and frame rate, or
// the error recording would meet), and removal with the choice to delete its recordings.

import * as api from "./api.js";
import { el, toast } from "./dom.js";
import { checkbox, field, FieldErrors, input, parseSize, sizeText } from "./forms.js";
import { formatBytes, formatDuration } from "./format.js";

const STREAMS = ["main", "sub"];

async function loadTop(session) {
  // the form shows stored URLs and credentials when the caller may read them
  try {
    return await api.topLevel({ cameraConfigs: true });
  } catch (e) {
    if (e.status !== 403) throw e;
    return session.refresh();
  }
}

function dirWarnings(top) {
  return new Map((top.nvrSampleFileDirs || []).map((d) => [d.id, d]));
}

export function renderCameraSettings(body, session) {
  let dirs = [];
  let top = session.top;

  async function reload() {
    [top, dirs] = await Promise.all([loadTop(session), api.dirs()]);
    showList();
  }

  function showList() {
    const byDir = dirWarnings(top);
    const warned = new Set();
    const cards = top.cameras.map((c) => {
      const rows = Object.entries(c.streams).map(([type, s]) => {
        const d = s.nvrSampleFileDir ? byDir.get(s.nvrSampleFileDir.id) : null;
        if (d?.warning) warned.add(d.id);
        return el(
          "tr",
          { dataset: { stream: type } },
          el("th", { scope: "row" }, type),
          el("td", { class: "url" }, s.config?.url || "–"),
          el("td", {}, formatBytes(s.retainBytes)),
          el("td", {}, d?.path || s.nvrSampleFileDir?.path || "–"),
        );
      });
      const actions = el("div", { class: "actions" },
        el("button", { type: "button", onclick: () => showForm(c) }, "Edit"),
        el("button", { type: "button", class: "danger", onclick: () => showRemove(card, c) }, "Remove…"));
      const card = el(
        "article",
        { class: "card cam-setting", dataset: { camera: c.uuid } },
        el("div", { class: "card-head" }, el("h2", {}, c.shortName), actions),
        c.description ? el("p", { class: "muted" }, c.description) : null,
        el("table", {},
          el("thead", {}, el("tr", {}, ["Stream", "URL", "Budget", "Directory"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, rows)),
      );
      return card;
    });
    const warnings = [...warned].map((id) =>
      el("p", { class: "last-error budget-warning dir-warning", role: "alert" }, `Warning: ${byDir.get(id).warning}`));
    body.replaceChildren(
      el("div", { class: "toolbar" },
        el("button", { type: "button", class: "primary", id: "add-camera", onclick: () => showForm(null) }, "Add camera")),
      ...warnings,
      cards.length ? el("section", { class: "settings-list" }, cards) : el("p", { class: "muted" }, "No cameras yet."),
    );
  }

  function showRemove(card, c) {
    const existing = card.querySelector(".remove-panel");
    if (existing) {
      existing.remove();
      return;
    }
    const recorded = Object.values(c.streams).reduce((n, s) => n + (s.totalDuration90k || 0), 0);
    const del = checkbox(`Also delete its recordings (${formatDuration(recorded)} of video)`, false, { name: "delete-recordings" });
    const error = el("p", { class: "field-error", role: "alert", hidden: "" });
    const go = el("button", { type: "button", class: "danger" }, `Remove ${c.shortName}`);
    go.addEventListener("click", async () => {
      go.disabled = true;
      error.hidden = true;
      try {
        const r = await api.deleteCamera(c.uuid, del.box.checked, session.csrf);
        toast(`Removed ${c.shortName}${r.recordings ? ` and ${r.recordings} recordings` : ""}.`);
        await session.refresh();
        await reload();
      } catch (e) {
        error.textContent = e.message;
        error.hidden = false;
        go.disabled = false;
      }
    });
    card.append(el("div", { class: "remove-panel" },
      el("p", {}, "Without deleting them, a camera that has recordings is not removed."),
      del.wrap, error,
      el("div", { class: "actions" }, go, el("button", { type: "button", onclick: () => showRemove(card, c) }, "Cancel"))));
  }

  function showForm(cam) {
    const errors = new FieldErrors(el("p", { class: "field-error form-error", role: "alert", hidden: "" }));
    const cfg = cam?.config || {};
    const name = errors.add(["camera.shortName", "a camera named"], field("Name", input({ name: "shortName", required: "", value: cam?.shortName || "" })));
    const desc = errors.add("camera.description", field("Description", input({ name: "description", value: cam?.description || "" })));
    const user = errors.add("camera.config.username", field("Camera username", input({ name: "username", value: cfg.username || "" })));
    const pass = errors.add("camera.config.password", field("Camera password", input({ name: "password", type: "password", autocomplete: "new-password", value: cfg.password || "" }),
      cam && !cam.config ? "Left empty, the stored password stays." : null));
    const dirSelect = el("select", { name: "sampleFileDirId" },
      dirs.map((d) => el("option", { value: String(d.id) }, d.path)));
    const firstStream = cam ? Object.values(cam.streams)[0] : null;
    if (firstStream?.nvrSampleFileDir) dirSelect.value = String(firstStream.nvrSampleFileDir.id);
    const dir = errors.add(["sampleFileDirId", "sample file directory"], field("Directory", dirSelect));
    const transport = el("select", { name: "rtspTransport" }, el("option", { value: "tcp" }, "TCP"), el("option", { value: "udp" }, "UDP"));
    transport.value = firstStream?.config?.rtspTransport || "tcp";
    const streams = {};
    const sections = STREAMS.map((type) => {
      const s = cam?.streams[type];
      const what = `camera.streams.${type}`;
      const url = errors.add([`${what}.url`, what], field(type === "main" ? "Main stream URL" : "Sub stream URL (optional)",
        input({ name: `${type}-url`, value: s?.config?.url || "", placeholder: "rtsp://192.0.2.7/stream1", required: type === "main" ? "" : null, inputmode: "url" })));
      const budget = errors.add(`${what}.retainBytes`, field("Budget", input({ name: `${type}-retainBytes`, value: s ? sizeText(s.retainBytes) : "", placeholder: "e.g. 100G or 2TiB" }),
        "Oldest recordings are deleted beyond this size."));
      const days = errors.add(`${what}.retainDays`, field("Keep at most (days)", input({ name: `${type}-retainDays`, value: s?.config?.retainDays || "", inputmode: "numeric", placeholder: "no limit" })));
      const warn = el("p", { class: "last-error budget-warning", role: "alert", hidden: "" });
      budget.wrap.append(warn);
      budget.input.addEventListener("input", () => checkBudget());
      const result = el("div", { class: "test-result", "aria-live": "polite" });
      const test = el("button", { type: "button", class: "test-button", dataset: { stream: type } }, "Test");
      test.addEventListener("click", () => runTest(type, url, result, test));
      url.wrap.append(el("div", { class: "test-row" }, test, result));
      streams[type] = { url, budget, days, warn, existing: Boolean(s) };
      return el("fieldset", { class: "stream-fields", dataset: { stream: type } }, el("legend", {}, `${type} stream`), url.wrap,
        el("div", { class: "form-grid" }, budget.wrap, days.wrap));
    });

    function checkBudget() {
      // a hint as the budget is typed; the server's warning (nvrSampleFileDirs) follows a save
      const d = dirWarnings(top).get(Number(dirSelect.value));
      for (const [type, s] of Object.entries(streams)) {
        const bytes = parseSize(s.budget.input.value);
        const total = d?.totalBytes;
        const over = typeof bytes === "number" && total != null && bytes > total;
        s.warn.textContent = over ? `Warning: ${type}'s budget (${formatBytes(bytes)}) is more than the disk holds (${formatBytes(total)}).` : "";
        s.warn.hidden = !over;
      }
    }

    async function runTest(type, url, result, button) {
      button.disabled = true;
      result.replaceChildren(el("span", { class: "muted" }, "Opening the stream from the server…"));
      const req = { url: url.input.value.trim(), rtspTransport: transport.value };
      if (user.input.value || !cam) req.username = user.input.value;
      if (pass.input.value || !cam) req.password = pass.input.value;
      if (cam) req.camera = cam.uuid;
      try {
        const r = await api.testCamera(req, session.csrf);
        if (r.error) {
          result.replaceChildren(el("p", { class: "last-error test-error", role: "alert" }, r.error));
        } else {
          const fps = r.frameRate ? `${r.frameRate.toFixed(r.frameRate % 1 ? 2 : 0)} fps` : "frame rate unknown";
          result.replaceChildren(
            el("img", { class: "snapshot", src: r.snapshot, alt: `Snapshot of the ${type} stream` }),
            el("p", { class: "test-info" }, `${r.codecName} (${r.codec}), ${r.width}×${r.height}, ${fps}`),
          );
        }
      } catch (e) {
        errors.show(e.message.startsWith("url") ? `camera.streams.${type}.${e.message}` : e.message);
        result.replaceChildren();
      } finally {
        button.disabled = false;
      }
    }

    function streamJson(type) {
      const s = streams[type];
      const url = s.url.input.value.trim();
      if (!url) return null;
      const out = { url, rtspTransport: transport.value };
      const budget = s.budget.input.value.trim();
      if (budget) out.retainBytes = parseSize(budget);
      const days = s.days.input.value.trim();
      out.retainDays = days ? (/^\d+$/.test(days) ? Number(days) : days) : null;
      if (!cam || !s.existing) out.sampleFileDirId = Number(dirSelect.value);
      return out;
    }

    const save = el("button", { type: "submit", class: "primary" }, cam ? "Save" : "Add camera");
    const form = el(
      "form",
      { class: "card settings-form", id: "camera-form", novalidate: "" },
      el("h2", {}, cam ? `Edit ${cam.shortName}` : "Add a camera"),
      el("div", { class: "form-grid" }, name.wrap, desc.wrap, user.wrap, pass.wrap, dir.wrap, field("RTSP transport", transport).wrap),
      sections,
      errors.general,
      el("div", { class: "actions" }, save, el("button", { type: "button", onclick: showList }, "Cancel")),
    );
    dirSelect.addEventListener("change", checkBudget);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      errors.clear();
      save.disabled = true;
      const config = {};
      if (!cam || user.input.value !== (cfg.username || "")) config.username = user.input.value;
      if (!cam || pass.input.value !== (cfg.password || "")) {
        if (pass.input.value || cam?.config) config.password = pass.input.value;
      }
      const s = {};
      for (const type of STREAMS) {
        const j = streamJson(type);
        if (j) s[type] = j;
      }
      const camera = { shortName: name.input.value.trim(), description: desc.input.value, config, streams: s };
      try {
        if (cam) await api.updateCamera(cam.uuid, camera, session.csrf);
        else await api.addCamera(camera, session.csrf);
        toast(cam ? `Saved ${camera.shortName}.` : `Added ${camera.shortName}.`);
        await session.refresh();
        await reload();
      } catch (err) {
        errors.show(err.message);
      } finally {
        save.disabled = false;
      }
    });
    body.replaceChildren(form);
    checkBudget();
    name.input.focus();
  }

  body.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  reload().catch((e) => body.replaceChildren(el("p", { class: "error" }, `Cannot load the cameras: ${e.message}`)));
  return null;
}
