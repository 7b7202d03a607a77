// Settings: cameras and storage (`adminConfig`), users (`adminUsers`), one section per
// path (/settings/cameras, /settings/storage, /settings/users) under a sub-navigation
// that shows only the sections the caller may use. Each section is its own module; they
// change the server only through the documented API (docs/api.md, "Configuration
// (extensions)" and Users), and refresh the session's `/api/` answer after a change.

import { el } from "./dom.js";
import { renderCameraSettings } from "./settings-cameras.js";
import { renderStorageSettings } from "./settings-storage.js";
import { renderUserSettings } from "./settings-users.js";

const SECTIONS = [
  ["cameras", "Cameras", "adminConfig", renderCameraSettings],
  ["storage", "Storage", "adminConfig", renderStorageSettings],
  ["users", "Users", "adminUsers", renderUserSettings],
];

/** Whether the caller may use any settings section (the top bar shows the tab then). */
export function maySettings(top) {
  const p = top?.permissions || {};
  return Boolean(p.adminConfig || p.adminUsers);
}

export function renderSettings(main, session) {
  const perms = session.top.permissions || {};
  const allowed = SECTIONS.filter(([, , need]) => perms[need]);
  main.append(el("div", { class: "toolbar" }, el("h1", {}, "Settings")));
  if (!allowed.length) {
    main.append(
      el("p", { class: "card" }, "Settings need the adminConfig or adminUsers permission. ",
        session.top.user ? "Ask an administrator." : el("a", { href: "/login?next=/settings", "data-nav": "" }, "Log in")),
    );
    return null;
  }
  const want = location.pathname.split("/")[2];
  const current = allowed.find(([name]) => name === want) || allowed[0];
  if (want !== current[0]) history.replaceState({}, "", `/settings/${current[0]}`);
  const nav = el(
    "nav",
    { class: "subtabs", "aria-label": "Settings sections" },
    allowed.map(([name, label]) =>
      el("a", { href: `/settings/${name}`, "data-nav": "", "aria-current": name === current[0] ? "page" : null }, label),
    ),
  );
  const body = el("div", { class: "settings", dataset: { section: current[0] } });
  main.append(nav, body);
  document.title = `${current[1]} · Settings · nvr`;
  return current[3](body, session) || null;
}
