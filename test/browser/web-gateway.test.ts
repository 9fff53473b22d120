// The web client in Chromium through the gateway, in front of an emulator
// that speaks only plain gRPC (as real Flame does). A gRPC-Web call straight
// to that emulator fails, so whatever works through the gateway was
// translated by it.
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import { type Gateway, startGateway } from "@flame-ts/gateway";
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

let browser: Browser;
let site: StaticServer;
let emulator: Emulator;
let gateway: Gateway;
let page: Page;
let releaseHeld: () => void = () => {};

const call = <K extends keyof PageApi & string>(name: K, ...args: Parameters<PageApi[K]>) =>
  callPage<PageApi, K>(page, name, ...args);

beforeAll(async () => {
  const [built, launched] = await Promise.all([buildPage("client"), launchChromium()]);
  browser = launched;
  site = await servePage(built);
  emulator = await startEmulator({
    port: 0,
    protocols: { grpc: true, grpcWeb: false, connect: false },
    corsOrigins: [site.origin],
    applications: {
      echo: { description: "echoes its input" },
      hold: { description: "runs until released" },
    },
  });
  emulator.serve("echo", async ({ input }) => {
    await new Promise((r) => setTimeout(r, 20));
    return `echo:${new TextDecoder().decode(input ?? new Uint8Array())}`;
  });
  const held = new Promise<void>((resolve) => {
    releaseHeld = resolve;
  });
  emulator.serve("hold", () => held.then(() => "released"));
  gateway = await startGateway({
    upstream: emulator.url,
    port: 0,
    allowedOrigins: [site.origin],
    methods: "all",
  });
  page = await openPage(browser, site.origin);
});

afterAll(async () => {
  releaseHeld();
  await browser?.close();
  await gateway?.close();
  await emulator?.close();
  await site?.close();
});

const listCalls = () => emulator.stats().calls.ListApplication ?? 0;

describe("web client through the gateway to a gRPC-only emulator", () => {
  it("cannot reach the gRPC-only emulator directly over gRPC-Web", async () => {
    const before = listCalls();
    const direct = await call("tryListApplications", emulator.url);
    expect(direct).toHaveProperty("error");
    expect(direct).not.toHaveProperty("names");
    expect(listCalls()).toBe(before);
  });

  it("lists applications through the gateway, which calls the emulator over gRPC", async () => {
    const before = listCalls();
    const via = await call("tryListApplications", gateway.url);
    expect(via).toEqual({
      names: expect.arrayContaining(["echo", "flmexec", "flmping", "flmrun", "hold"]),
    });
    expect(listCalls()).toBe(before + 1);
  });

  it("creates a session and runs tasks through the gateway", async () => {
    const run = await call("runTasks", gateway.url, "echo", ["x", "y"]);
    expect(run.sessionListed).toBe(true);
    expect(run.results.map((r) => r.state)).toEqual(["Succeed", "Succeed"]);
    expect(run.results.map((r) => r.output).sort()).toEqual(["echo:x", "echo:y"]);
  });

  it("streams a watch through the gateway: current state, then terminal", async () => {
    const { states } = await call("watchOneTask", gateway.url, "echo", "w");
    expect(["Pending", "Running"]).toContain(states[0]);
    expect(states.at(-1)).toBe("Succeed");
  });

  it("a watch unsubscribed in the page is cancelled upstream, past the gateway", async () => {
    const before = emulator.stats().streamsCancelled;
    const { handle } = await call("startWatch", gateway.url, "hold");
    await until(() => emulator.stats().openStreams === 1, "the upstream watch stream to open");
    await until(async () => (await call("watchStates", handle)).length > 0, "the first state");
    await call("stopWatch", handle);
    await until(() => emulator.stats().streamsCancelled > before, "the emulator to see the cancel");
    await until(() => emulator.stats().openStreams === 0, "no upstream stream left open");
    expect(emulator.stats().streamsCancelled).toBe(before + 1);
  });
});
