// Builds the dashboard with `vite build`, serves the static bundle, points it
// at an emulator running the `demo` application, and drives it in Chromium:
// create a session, run tasks, watch them reach Succeed. Saves a screenshot.
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Emulator } from "@flame-ts/emulator";
import type { Browser, Page } from "playwright-core";
import { build, type Rolldown } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  gzipSizeOfJs,
  launchChromium,
  type StaticServer,
  serveFiles,
} from "../../../test/browser/harness.js";
import { startDemoEmulator } from "../scripts/demo-emulator.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const screenshots = resolve(root, "../../test-results");
const TASKS = 8;

let files: Map<string, string | Uint8Array>;
let site: StaticServer;
let emulator: Emulator;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  const [output, launched, started] = await Promise.all([
    build({
      root,
      configFile: resolve(root, "vite.config.ts"),
      logLevel: "warn",
      build: { write: false },
    }),
    launchChromium(),
    startDemoEmulator({ port: 0, maxTaskMs: 400 }),
  ]);
  browser = launched;
  emulator = started;
  files = new Map();
  for (const out of (Array.isArray(output) ? output : [output]) as Rolldown.RolldownOutput[]) {
    for (const item of out.output)
      files.set(item.fileName, item.type === "chunk" ? item.code : item.source);
  }
  site = await serveFiles(files);
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
});

afterAll(async () => {
  await browser?.close();
  await emulator?.close();
  await site?.close();
});

describe("dashboard", () => {
  it("builds a static bundle: index.html and JavaScript, no Node built-ins", () => {
    expect(files.has("index.html")).toBe(true);
    const js = [...files].filter(([name]) => name.endsWith(".js"));
    expect(js.length).toBeGreaterThan(0);
    for (const [, code] of js) expect(String(code)).not.toMatch(/["'`]node:/);
    console.log(
      `dashboard client JS: ${gzipSizeOfJs(files)} bytes gzipped (level 9), no UI framework`,
    );
  });

  it("lists applications, creates a session, runs tasks and shows them succeed live", async () => {
    await page.goto(`${site.origin}/?flame=${encodeURIComponent(emulator.url)}`);
    await expect.poll(() => page.getByTestId("flame-url").textContent()).toBe(emulator.url);
    await page.locator('[data-testid="application-row"][data-name="demo"]').waitFor();
    await page.getByTestId("application-select").selectOption("demo");

    await page.getByTestId("create-session").click();
    await page.getByTestId("session-view").waitFor();
    const sessionId = await page.locator('[data-testid="session-view"] h2 code').textContent();
    expect(sessionId).toBeTruthy();
    await page.locator(`[data-testid="session-row"][data-id="${sessionId}"]`).waitFor();

    await page.getByTestId("task-count").fill(String(TASKS));
    await page.getByTestId("task-input").fill("hello from the browser test");
    // Hold the tasks Pending first, so the page is seen to change without a reload.
    emulator.pause();
    await page.getByTestId("run-tasks").click();
    const pending = page.locator('[data-testid="task-row"][data-state="Pending"]');
    await expect.poll(() => pending.count()).toBe(TASKS);
    mkdirSync(screenshots, { recursive: true });
    await page.screenshot({ path: resolve(screenshots, "dashboard-pending.png"), fullPage: true });
    emulator.resume();

    const succeeded = page.locator('[data-testid="task-row"][data-state="Succeed"]');
    await expect.poll(() => succeeded.count(), { timeout: 30_000 }).toBe(TASKS);
    await expect
      .poll(() =>
        page.locator('[data-testid="task-counts"] [data-state="Succeed"] b').textContent(),
      )
      .toBe(String(TASKS));
    const firstOutput = await succeeded.first().locator("td code").textContent();
    expect(firstOutput).toContain("hello from the browser test");

    // The server agrees, and the sessions table catches up with it.
    expect(emulator.stats().calls.CreateTask).toBe(TASKS);
    await expect
      .poll(() =>
        page
          .locator(`[data-testid="session-row"][data-id="${sessionId}"]`)
          .getAttribute("data-succeed"),
      )
      .toBe(String(TASKS));

    await page.screenshot({ path: resolve(screenshots, "dashboard.png"), fullPage: true });
  });
});
