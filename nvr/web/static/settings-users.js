// Settings, users (`adminUsers`, Moonfire's `/api/users/` routes): the list with each
// user's permissions, camera limit and state; a form to add or edit one (name, password
// when adding, permissions, the cameras it is limited to); disable/enable, reset the
// password, remove.

import * as api from "./api.js";
import { el, toast } from "./dom.js";
import { checkbox, field, FieldErrors, input } from "./forms.js";

const PERMISSION_TEXT = {
  viewVideo: "view video",
  readCameraConfigs: "read camera configurations (URLs, credentials)",
  updateSignals: "update signals",
  adminUsers: "manage users",
  protectVideo: "protect video from deletion",
  adminConfig: "change the configuration (cameras, storage)",
};

export function renderUserSettings(body, session) {
  const permissionNames = Object.keys(session.top.permissions || PERMISSION_TEXT);

  async function reload() {
    show(await api.users());
  }

  function cameraNames(limit) {
    if (limit == null) return "all cameras";
    if (!limit.length) return "no camera";
    const byUuid = new Map(session.top.cameras.map((c) => [c.uuid, c.shortName]));
    return limit.map((u) => byUuid.get(u) || u.slice(0, 8)).join(", ");
  }

  function show(users) {
    const rows = users.map(({ id, user }) => {
      const perms = Object.entries(user.permissions || {}).filter(([, on]) => on).map(([p]) => p);
      const error = el("p", { class: "field-error", role: "alert", hidden: "" });
      const panel = el("div", { class: "inline-panel" });
      async function act(update, done) {
        error.hidden = true;
        try {
          await api.updateUser(id, update, session.csrf);
          toast(done);
          await reload();
        } catch (e) {
          error.textContent = e.message;
          error.hidden = false;
        }
      }
      function resetPassword() {
        if (panel.firstChild) {
          panel.replaceChildren();
          return;
        }
        const errors = new FieldErrors(el("p", { class: "field-error", role: "alert", hidden: "" }));
        const pw = errors.add(["user.password", "password"], field("New password", input({ type: "password", autocomplete: "new-password", name: "new-password" })));
        const go = el("button", { type: "submit", class: "primary" }, "Set password");
        const f = el("form", { class: "reset-form", novalidate: "" }, pw.wrap, errors.general, go);
        f.addEventListener("submit", async (e) => {
          e.preventDefault();
          try {
            await api.updateUser(id, { password: pw.input.value }, session.csrf);
            toast(`New password set for ${user.username}.`);
            panel.replaceChildren();
          } catch (err) {
            errors.show(err.message);
          }
        });
        panel.replaceChildren(f);
        pw.input.focus();
      }
      const remove = el("button", { type: "button", class: "danger" }, "Remove");
      remove.addEventListener("click", async () => {
        if (remove.dataset.confirm !== "1") {
          remove.dataset.confirm = "1";
          remove.textContent = `Really remove ${user.username}?`;
          return;
        }
        try {
          await api.deleteUser(id, session.csrf);
          toast(`Removed ${user.username}.`);
          await reload();
        } catch (e) {
          error.textContent = e.message;
          error.hidden = false;
        }
      });
      return el(
        "tr",
        { dataset: { user: user.username } },
        el("th", { scope: "row" }, user.username, user.disabled ? el("span", { class: "badge" }, " disabled") : null),
        el("td", {}, perms.join(", ") || el("span", { class: "muted" }, "none")),
        el("td", {}, cameraNames(user.nvrCameras)),
        el("td", { class: "actions" },
          el("button", { type: "button", onclick: () => showForm({ id, user }) }, "Edit"),
          el("button", { type: "button", onclick: () => act({ disabled: !user.disabled }, `${user.username} ${user.disabled ? "enabled" : "disabled"}.`) },
            user.disabled ? "Enable" : "Disable"),
          el("button", { type: "button", onclick: resetPassword }, "Reset password"),
          remove, error, panel),
      );
    });
    body.replaceChildren(
      el("div", { class: "toolbar" }, el("button", { type: "button", class: "primary", id: "add-user", onclick: () => showForm(null) }, "Add user")),
      el("section", { class: "card" },
        el("div", { class: "table-scroll" },
          el("table", {},
            el("thead", {}, el("tr", {}, ["User", "Permissions", "Cameras", ""].map((h) => el("th", { scope: "col" }, h)))),
            el("tbody", {}, rows)))),
    );
  }

  function showForm(existing) {
    const u = existing?.user;
    const errors = new FieldErrors(el("p", { class: "field-error form-error", role: "alert", hidden: "" }));
    const name = errors.add(["user.username", "user name", "a user named"], field("Username", input({ name: "username", required: "", value: u?.username || "" })));
    const pass = existing ? null : errors.add("user.password", field("Password", input({ name: "password", type: "password", autocomplete: "new-password" }),
      "Without one, the user cannot log in until a password is set."));
    const permBoxes = permissionNames.map((p) => [p, checkbox(`${p}: ${PERMISSION_TEXT[p] || p}`, u ? u.permissions?.[p] : p === "viewVideo", { name: `perm-${p}`, value: p })]);
    const perms = errors.add(["user.permissions", "permission"], { input: permBoxes[0][1].box, error: el("p", { class: "field-error", role: "alert", hidden: "" }) });
    const limit = u?.nvrCameras;
    const all = checkbox("All cameras, including those added later", limit == null, { name: "all-cameras" });
    const camBoxes = session.top.cameras.map((c) => [c.uuid, checkbox(c.shortName, limit != null && limit.includes(c.uuid), { name: "camera", value: c.uuid })]);
    const camFs = el("fieldset", { class: "camera-limit" }, el("legend", {}, "Cameras"), all.wrap,
      el("div", { class: "check-list" }, camBoxes.map(([, b]) => b.wrap)));
    const cams = errors.add("nvrCameras", { input: all.box, error: el("p", { class: "field-error", role: "alert", hidden: "" }) });
    camFs.append(cams.error);
    const syncCams = () => {
      for (const [, b] of camBoxes) b.box.disabled = all.box.checked;
    };
    all.box.addEventListener("change", syncCams);
    syncCams();
    const save = el("button", { type: "submit", class: "primary" }, existing ? "Save" : "Add user");
    const form = el(
      "form",
      { class: "card settings-form", id: "user-form", novalidate: "" },
      el("h2", {}, existing ? `Edit ${u.username}` : "Add a user"),
      el("div", { class: "form-grid" }, name.wrap, pass?.wrap),
      el("fieldset", { class: "permissions" }, el("legend", {}, "Permissions"),
        el("div", { class: "check-list" }, permBoxes.map(([, b]) => b.wrap)), perms.error),
      camFs,
      errors.general,
      el("div", { class: "actions" }, save, el("button", { type: "button", onclick: () => reload() }, "Cancel")),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      errors.clear();
      save.disabled = true;
      const subset = {
        username: name.input.value,
        permissions: Object.fromEntries(permBoxes.map(([p, b]) => [p, b.box.checked])),
        nvrCameras: all.box.checked ? null : camBoxes.filter(([, b]) => b.box.checked).map(([id]) => id),
      };
      if (pass && pass.input.value) subset.password = pass.input.value;
      try {
        if (existing) await api.updateUser(existing.id, subset, session.csrf);
        else await api.addUser(subset, session.csrf);
        toast(existing ? `Saved ${subset.username}.` : `Added ${subset.username}.`);
        await reload();
      } catch (err) {
        errors.show(err.message);
      } finally {
        save.disabled = false;
      }
    });
    body.replaceChildren(form);
    name.input.focus();
  }

  body.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  reload().catch((e) => body.replaceChildren(el("p", { class: "error" }, `Cannot load the users: ${e.message}`)));
  return null;
}
