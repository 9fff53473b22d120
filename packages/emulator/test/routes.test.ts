// The emulator without a server, as used in browsers and unit tests:
// createRouterTransport over createEmulatorRoutes().
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Code, createClient, createRouterTransport } from "@connectrpc/connect";
import { Frontend, TaskState } from "@flame-ts/core/gen";
import { afterEach, describe, expect, it } from "vitest";
import { createEmulatorRoutes, type EmulatorRoutes } from "../src/browser.js";
import { collect, expectCode, stateOf, text, waitForTask } from "./helpers.js";

let core: EmulatorRoutes | undefined;
afterEach(() => core?.stop());

describe("createEmulatorRoutes", () => {
  it("runs the Frontend in memory, with handlers and stats", async () => {
    core = createEmulatorRoutes({ hostname: "mem" });
    core.serve("flmexec", ({ input }) => `got ${text(input)}`);
    const client = createClient(
      Frontend,
      createRouterTransport(core.routes, { router: { interceptors: core.interceptors } }),
    );
    await client.createSession({ sessionId: "m", session: { application: "flmexec" } });
    await client.createTask({ task: { sessionId: "m", input: new TextEncoder().encode("x") } });
    const done = await waitForTask(client, "m", "1");
    expect(stateOf(done)).toBe(TaskState.Succeed);
    expect(text(done.spec?.output)).toBe("got x");
    expect((await collect(client.watchTask({ sessionId: "m", taskId: "1" }))).length).toBe(1);
    await expectCode(client.getSession({ sessionId: "nope" }), Code.NotFound);
    expect((await client.listNodes({})).nodes[0]?.metadata?.name).toBe("mem");
    expect(core.stats().calls).toMatchObject({ CreateSession: 1, CreateTask: 1, WatchTask: 1 });
  });

  it("names executors with UUIDs even where crypto.randomUUID is missing (plain-http pages)", async () => {
    const crypto = globalThis.crypto as { randomUUID?: unknown };
    const original = crypto.randomUUID;
    crypto.randomUUID = undefined;
    try {
      expect(typeof globalThis.crypto.randomUUID).toBe("undefined");
      core = createEmulatorRoutes();
      const client = createClient(Frontend, createRouterTransport(core.routes));
      await client.createSession({ sessionId: "u", session: { application: "flmexec" } });
      await client.createTask({ task: { sessionId: "u" } });
      await waitForTask(client, "u", "1");
      const [executor] = (await client.listExecutor({})).executors;
      expect(executor?.metadata?.id).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
    } finally {
      crypto.randomUUID = original;
    }
  });

  it("pulls in no Node built-ins, so it can be bundled for a browser", () => {
    const src = join(dirname(fileURLToPath(import.meta.url)), "../src");
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const code = readFileSync(join(src, file), "utf8");
      expect(code, file).not.toMatch(/from "node:|import\("node:/);
      for (const match of code.matchAll(/from "\.\/([\w-]+)\.js"/g)) visit(`${match[1]}.ts`);
    };
    visit("browser.ts");
    expect(seen).toContain("session-manager.ts");
    expect(seen).toContain("frontend-service.ts");
  });
});
