// The web client in Chromium through the gateway, in front of an emulator
// that speaks only plain gRPC (as real Flame does). A gRPC-Web call straight
// to that emulator fails, so whatever works through the gateway was
// translated by it.
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import { type Gateway, startGateway } from "@flame-ts/gateway";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClientPage, Gate, openClientPage, until } from "./harness.js";

let client: ClientPage;
let emulator: Emulator;
let gateway: Gateway;
const held = new Gate(); // opened only at the end
const step = new Gate(); // opened by the watch test

const call: ClientPage["call"] = (name, ...args) => client.call(name, ...args);

beforeAll(async () => {
  client = await openClientPage();
  emulator = await startEmulator({
    port: 0,
    protocols: { grpc: true, grpcWeb: false, connect: false },
    corsOrigins: [client.origin],
    applications: {
      echo: { description: "echoes its input" },
      hold: { description: "runs until the end of the file" },
      step: { description: "runs until the watch test lets it finish" },
    },
  });
  emulator.serve("echo", async ({ input }) => `echo:${new TextDecoder().decode(input)}`);
  emulator.serve("hold", () => held.wait().then(() => "released"));
  emulator.serve("step", () => step.wait().then(() => "stepped"));
  gateway = await startGateway({
    upstream: emulator.url,
    port: 0,
    allowedOrigins: [client.origin],
    methods: "all",
  });
});

afterAll(async () => {
  held.open();
  step.open();
  await client?.close();
  await gateway?.close();
  await emulator?.close();
});

const listCalls = () => emulator.stats().calls.ListApplication ?? 0;

describe("web client through the gateway to a gRPC-only emulator", () => {
  it("cannot reach the gRPC-only emulator directly over gRPC-Web", async () => {
    const before = listCalls();
    const direct = await call("tryListApplications", emulator.url);
    // The server answered, and refused the protocol: 415 Unsupported Media Type.
    expect(direct).toMatchObject({ error: { isFlameError: true } });
    expect(direct).not.toHaveProperty("names");
    expect((direct as { error: { message: string } }).error.message).toContain("HTTP 415");
    expect(listCalls()).toBe(before);
  });

  it("lists applications through the gateway, which calls the emulator over gRPC", async () => {
    const before = listCalls();
    const via = await call("tryListApplications", gateway.url);
    expect(via).toEqual({
      names: expect.arrayContaining(["echo", "flmexec", "flmping", "flmrun", "hold"]),
    });
    expect(listCalls()).toBe(before + 1);
    expect(gateway.stats().forwarded.ListApplication).toBeGreaterThan(0);
  });

  it("creates a session and runs tasks through the gateway", async () => {
    const run = await call("runTasks", gateway.url, "echo", ["x", "y"]);
    expect(run.sessionListed).toBe(true);
    expect(run.results.map((r) => r.state)).toEqual(["Succeed", "Succeed"]);
    expect(run.results.map((r) => r.output).sort()).toEqual(["echo:x", "echo:y"]);
  });

  it("streams a watch through the gateway: current state, then terminal, then complete", async () => {
    const { handle } = await call("startWatch", gateway.url, "step");
    await until(async () => (await call("watchStates", handle)).length > 0, "the current state");
    const [first] = await call("watchStates", handle);
    expect(["Pending", "Running"]).toContain(first);

    step.open();
    const states = await call("finishWatch", handle);
    expect(states.slice(-2)).toEqual(["Succeed", "complete"]);
    expect(states.filter((s) => s === "Succeed")).toHaveLength(1);
  });

  it("watchSession follows every task of a session through the gateway", async () => {
    await call("startSessionWatch", gateway.url, "echo", 12);
    const { states } = await call("finishSessionWatch");
    expect(Object.keys(states)).toHaveLength(12);
    expect(new Set(Object.values(states))).toEqual(new Set(["Succeed"]));
  });

  it("a watch unsubscribed in the page is cancelled upstream, past the gateway", async () => {
    await until(() => emulator.stats().openStreams === 0, "earlier streams to end");
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
