// watchSession in Chromium over HTTP/1.1, where the browser holds at most six
// connections per origin and each open gRPC-Web stream takes one. Fifty
// tasks are watched at once; every terminal state must arrive, and unary
// calls must still get through while the watch is open.
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildPage,
  callPage,
  launchChromium,
  openPage,
  type StaticServer,
  servePage,
  until,
} from "./harness.js";
import type { PageApi } from "./pages/client.js";

const TASKS = 50;
/** Chromium's HTTP/1.1 connections per origin: the budget the watch must live within. */
const BROWSER_CONNECTIONS = 6;

let browser: Browser;
let site: StaticServer;
let emulator: Emulator;
let page: Page;
let release: () => void = () => {};

const call = <K extends keyof PageApi & string>(name: K, ...args: Parameters<PageApi[K]>) =>
  callPage<PageApi, K>(page, name, ...args);

beforeAll(async () => {
  const [built, launched] = await Promise.all([buildPage("client"), launchChromium()]);
  browser = launched;
  site = await servePage(built);
  emulator = await startEmulator({
    port: 0,
    corsOrigins: [site.origin],
    applications: { gated: { description: "runs until the test opens the gate" } },
  });
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  emulator.serve("gated", async ({ taskId }) => {
    await gate;
    return `done ${taskId}`;
  });
  page = await openPage(browser, site.origin);
});

afterAll(async () => {
  release();
  await browser?.close();
  await emulator?.close();
  await site?.close();
});

describe(`watchSession with ${TASKS} tasks over HTTP/1.1`, () => {
  it("keeps unary calls working while watching, then delivers every terminal state", async () => {
    expect(new URL(emulator.url).protocol).toBe("http:"); // no HTTP/2 for the browser

    const { sessionId } = await call("startSessionWatch", emulator.url, "gated", TASKS);
    expect(sessionId).toBeTruthy();
    await until(() => emulator.stats().openStreams > 0, "the watch to open its streams");

    // Every task is held, so the watch is live and busy; a unary call must
    // not be starved of a connection.
    const listed = await call("tryListApplications", emulator.url);
    expect(listed).toEqual({ names: expect.arrayContaining(["gated"]) });
    const progress = await call("sessionWatchProgress");
    expect(progress.terminal).toBe(0);
    expect(progress.total).toBe(TASKS);
    expect(emulator.stats().openStreams).toBeLessThanOrEqual(BROWSER_CONNECTIONS);

    release();
    const { states } = await call("finishSessionWatch");
    expect(Object.keys(states)).toHaveLength(TASKS);
    expect(new Set(Object.values(states))).toEqual(new Set(["Succeed"]));
    await until(() => emulator.stats().openStreams === 0, "every watch stream to close");
  });
});
