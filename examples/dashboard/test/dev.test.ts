// The one-command dev setup: the demo emulator plus Vite's dev server, with
// the app told the emulator's URL. Chromium loads the dev server's page
// (TypeScript served by Vite) and runs tasks on the demo application.
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../../../test/browser/harness.js";
import { type Dev, startDev } from "../scripts/dev-server.js";

let dev: Dev;
let browser: Browser;

beforeAll(async () => {
  [dev, browser] = await Promise.all([startDev({ port: 0, verbose: false }), launchChromium()]);
});

afterAll(async () => {
  await browser?.close();
  await dev?.close();
});

describe("npm run dev", () => {
  it("serves the app pointed at the demo emulator, which runs tasks", async () => {
    const page = await browser.newPage();
    await page.goto(dev.url);
    await expect.poll(() => page.getByTestId("flame-url").textContent()).toBe(dev.emulator.url);
    await page.locator('[data-testid="application-row"][data-name="demo"]').waitFor();
    await expect.poll(() => page.getByTestId("application-select").inputValue()).toBe("demo");

    await page.getByTestId("create-session").click();
    await page.getByTestId("session-view").waitFor();
    await page.getByTestId("task-count").fill("3");
    await page.getByTestId("run-tasks").click();
    const succeeded = page.locator('[data-testid="task-row"][data-state="Succeed"]');
    await expect.poll(() => succeeded.count(), { timeout: 30_000 }).toBe(3);
  });
});
