import "./style.css";
import { type Application, connect, type Session } from "@flame-ts/web";
import { renderApplications } from "./applications-view.js";
import { h, replace } from "./dom.js";
import { resolveFlameUrl } from "./flame-url.js";
import { errorText } from "./format.js";
import { SessionView } from "./session-view.js";
import { renderSessions } from "./sessions-view.js";

const flameUrl = resolveFlameUrl(window.location, import.meta.env.VITE_FLAME_URL);
const flame = connect(flameUrl);

const applicationsBox = h("div", { "data-testid": "applications" });
const sessionsBox = h("div", { "data-testid": "sessions" });
const sessionBox = h("div");
const message = h("p", { class: "message", "data-testid": "message" });
const appSelect = h("select", { "data-testid": "application-select", "aria-label": "application" });
const taskCount = h("input", {
  type: "number",
  min: 1,
  max: 500,
  value: 10,
  "data-testid": "task-count",
  "aria-label": "tasks",
});
const taskInput = h("input", {
  type: "text",
  value: "hello",
  "data-testid": "task-input",
  "aria-label": "input",
});

let applications: Application[] = [];
let sessions: Session[] = [];
let current: SessionView | undefined;

function say(text: string): void {
  message.textContent = text;
}

async function refreshApplications(): Promise<void> {
  try {
    applications = await flame.listApplications();
    renderApplications(applicationsBox, applications);
    const chosen = appSelect.value || (applications.some((a) => a.name === "demo") ? "demo" : "");
    replace(appSelect, ...applications.map((a) => h("option", { value: a.name }, a.name)));
    if (chosen) appSelect.value = chosen;
  } catch (err) {
    say(`Could not list applications: ${errorText(err)}`);
  }
}

async function refreshSessions(): Promise<void> {
  try {
    sessions = await flame.listSessions();
    renderSessions(sessionsBox, sessions, current?.session.id, (s) => void openSession(s.id));
  } catch (err) {
    say(`Could not list sessions: ${errorText(err)}`);
  }
}

// Task changes arrive in bursts; refresh the sessions table at most twice a second.
let refreshPending = false;
function refreshSessionsSoon(): void {
  if (refreshPending) return;
  refreshPending = true;
  setTimeout(() => {
    refreshPending = false;
    void refreshSessions();
  }, 500);
}

function show(session: Session): void {
  current?.dispose();
  current = new SessionView(session, refreshSessionsSoon);
  replace(sessionBox, current.element);
}

async function openSession(id: string): Promise<void> {
  try {
    show(await flame.getSession(id));
    await refreshSessions();
  } catch (err) {
    say(`Could not open session ${id}: ${errorText(err)}`);
  }
}

async function createSession(): Promise<void> {
  const application = appSelect.value;
  if (!application) return say("Choose an application first.");
  try {
    const session = await flame.createSession({ application });
    say(`Created session ${session.id}.`);
    show(session);
    await refreshSessions();
  } catch (err) {
    say(`Could not create a session: ${errorText(err)}`);
  }
}

async function runTasks(): Promise<void> {
  if (!current) return say("Create or pick a session first.");
  const count = Math.max(1, Math.min(500, Number(taskCount.value) || 1));
  await current.runTasks(count, taskInput.value);
  await refreshSessions();
}

replace(
  document.getElementById("app") ?? document.body,
  h(
    "header",
    { class: "top" },
    h("h1", {}, "Flame"),
    h(
      "span",
      { class: "muted" },
      "connected to ",
      h("code", { "data-testid": "flame-url" }, flameUrl),
    ),
  ),
  message,
  h(
    "main",
    {},
    h(
      "div",
      { class: "column" },
      h(
        "section",
        { class: "card" },
        h(
          "header",
          {},
          h("h2", {}, "Applications"),
          h("button", { type: "button", onclick: () => void refreshApplications() }, "Refresh"),
        ),
        applicationsBox,
      ),
      h(
        "section",
        { class: "card" },
        h(
          "header",
          {},
          h("h2", {}, "Sessions"),
          h("button", { type: "button", onclick: () => void refreshSessions() }, "Refresh"),
        ),
        sessionsBox,
      ),
    ),
    h(
      "div",
      { class: "column" },
      h(
        "section",
        { class: "card" },
        h("header", {}, h("h2", {}, "Run")),
        h(
          "div",
          { class: "form" },
          h("label", {}, "application ", appSelect),
          h(
            "button",
            {
              type: "button",
              "data-testid": "create-session",
              onclick: () => void createSession(),
            },
            "Create session",
          ),
        ),
        h(
          "div",
          { class: "form" },
          h("label", {}, "tasks ", taskCount),
          h("label", {}, "input ", taskInput),
          h(
            "button",
            { type: "button", "data-testid": "run-tasks", onclick: () => void runTasks() },
            "Run tasks",
          ),
        ),
      ),
      sessionBox,
    ),
  ),
);

await Promise.all([refreshApplications(), refreshSessions()]);
