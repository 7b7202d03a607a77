// The UI's entry point: session handling, the client-side router and the shared state
// (the `/api/` answer, refreshed by a poll). Pages live in their own modules.

import * as api from "./api.js";
import { el, toast } from "./dom.js";
import { renderLive } from "./page-live.js";
import { renderRecordings } from "./page-recordings.js";
import { maySettings, renderSettings } from "./page-settings.js";
import { renderStatus } from "./page-status.js";

const POLL_MS = 10000;

/** What pages share. `top` is the latest `/api/?days=true`; listeners hear each refresh. */
export const session = {
  top: null,
  listeners: new Set(),
  get tz() {
    return this.top?.timeZoneName || "UTC";
  },
  get csrf() {
    return this.top?.user?.session?.csrf || null;
  },
  async refresh() {
    this.top = await api.topLevel();
    updateWho();
    for (const f of this.listeners) {
      try {
        f(this.top);
      } catch (e) {
        console.error(e);
      }
    }
    return this.top;
  },
  subscribe(f) {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  },
};

const pages = {
  live: renderLive,
  recordings: renderRecordings,
  status: renderStatus,
  settings: renderSettings,
};

let cleanup = null;
let pollTimer = null;

function pageOf(path) {
  const name = path.replace(/^\/+/, "").split("/")[0];
  if (name === "login") return "login";
  return pages[name] ? name : "live";
}

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState({}, "", path);
  else history.pushState({}, "", path);
  route();
}

function updateWho() {
  const who = document.getElementById("who-name");
  const logout = document.getElementById("logout");
  const user = session.top?.user;
  // the Settings tab only for those who may change something there
  document.getElementById("settings-tab").hidden = !maySettings(session.top);
  if (user) {
    who.replaceChildren(user.name);
    logout.hidden = !session.csrf;
  } else {
    // the bind grants these without a session; a login may grant more, if there is a user
    // who can log in (`nvrLoginAvailable`: the demo has none)
    const canLogIn = session.top && session.top.nvrLoginAvailable !== false;
    who.replaceChildren(canLogIn ? el("a", { href: "/login", "data-nav": "" }, "Log in") : "");
    logout.hidden = true;
  }
}

async function route() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  const main = document.getElementById("main");
  const name = pageOf(location.pathname);
  for (const a of document.querySelectorAll(".tabs a")) {
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.body.dataset.page = name;
  if (name === "login") {
    renderLogin(main);
    return;
  }
  if (!session.top) {
    try {
      await session.refresh();
    } catch (e) {
      if (e.status === 401) {
        showLogin(location.pathname);
        return;
      }
      main.replaceChildren(el("p", { class: "error" }, `Cannot reach the server: ${e.message}`));
      setTimeout(route, 5000);
      return;
    }
  }
  startPolling();
  main.replaceChildren();
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · nvr`;
  cleanup = pages[name](main, session) || null;
}

function showLogin(next) {
  session.top = null;
  updateWho();
  stopPolling();
  const q = next && next !== "/login" ? `?next=${encodeURIComponent(next)}` : "";
  navigate(`/login${q}`, { replace: true });
}

function startPolling() {
  if (pollTimer) return;
  pollTimer = setInterval(async () => {
    if (document.hidden) return;
    try {
      await session.refresh();
    } catch (e) {
      if (e.status === 401) showLogin(location.pathname);
    }
  }, POLL_MS);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

function renderLogin(main) {
  document.title = "Log in · nvr";
  const error = el("p", { class: "error", role: "alert", hidden: "" });
  const user = el("input", {
    id: "login-user",
    name: "username",
    autocomplete: "username",
    required: "",
    autocapitalize: "none",
    spellcheck: "false",
  });
  const pass = el("input", {
    id: "login-pass",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: "",
  });
  const submit = el("button", { type: "submit", class: "primary" }, "Log in");
  const form = el(
    "form",
    { class: "login card", id: "login-form" },
    el("h1", {}, "Log in"),
    el("label", { for: "login-user" }, "Username"),
    user,
    el("label", { for: "login-pass" }, "Password"),
    pass,
    error,
    submit,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      await api.login(user.value, pass.value);
      await session.refresh();
      const next = new URLSearchParams(location.search).get("next");
      navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/live", {
        replace: true,
      });
    } catch (err) {
      error.textContent =
        err.status === 401 || err.status === 403
          ? "Wrong username or password."
          : `Could not log in: ${err.message}`;
      error.hidden = false;
      pass.select();
    } finally {
      submit.disabled = false;
    }
  });
  main.replaceChildren(el("div", { class: "login-wrap" }, form));
  user.focus();
}

async function logout() {
  const csrf = session.csrf;
  try {
    if (csrf) await api.logout(csrf);
  } catch (e) {
    if (e.status !== 401) {
      // 401: the session had already ended, which is what was asked for
      toast(`Logout failed: ${e.message}`);
      return;
    }
  }
  showLogin("/live");
}

document.getElementById("logout").addEventListener("click", logout);
document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-nav]");
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", route);
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && session.top) session.refresh().catch(() => {});
});
route();
