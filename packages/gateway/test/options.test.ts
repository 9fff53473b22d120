import { describe, expect, it } from "vitest";
import {
  CorsPolicy,
  frontendMethodNames,
  readOnlyMethodNames,
  resolveMethodSelection,
  startGateway,
} from "../src/index.js";

describe("upstream validation", () => {
  it.each([
    [undefined, /upstream is required/],
    ["", /upstream is required/],
    ["flame:8080", /flame:\/\/ is not supported; did you mean http:\/\/flame:8080\?/],
    ["not a url", /could not parse "not a url"/],
    ["127.0.0.1:8080", /could not parse "127.0.0.1:8080"; did you mean http:\/\/127.0.0.1:8080\?/],
    ["grpc://flame:8080", /grpc:\/\/ is not supported/],
    ["http://flame:8080/?x=1", /must not have a query/],
  ])("rejects %s with a clear error", async (upstream, message) => {
    await expect(startGateway({ upstream: upstream as string })).rejects.toThrow(message);
  });

  it("rejects credentials in the URL without echoing them", async () => {
    const err = await startGateway({ upstream: "http://admin:hunter2@flame:8080" }).catch(
      (e: Error) => e,
    );
    expect((err as Error).message).toContain("must not contain credentials");
    expect((err as Error).message).not.toContain("hunter2");
  });

  it("rejects a bad port, message limit or empty token before listening", async () => {
    const upstream = "http://127.0.0.1:1";
    await expect(startGateway({ upstream, port: 70000 })).rejects.toThrow(/port must be/);
    await expect(startGateway({ upstream, maxMessageBytes: 0 })).rejects.toThrow(
      /maxMessageBytes must be a positive integer/,
    );
    await expect(startGateway({ upstream, bearerToken: "" })).rejects.toThrow(
      /bearerToken must not be empty/,
    );
    await expect(
      startGateway({ upstream, protocols: { grpc: false, grpcWeb: false, connect: false } }),
    ).rejects.toThrow(/at least one of grpc, grpcWeb and connect/);
  });

  it("reports a port already in use", async () => {
    const first = await startGateway({ upstream: "http://127.0.0.1:1" });
    try {
      await expect(
        startGateway({ upstream: "http://127.0.0.1:1", port: first.port }),
      ).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});

describe("method selection", () => {
  it("covers every Frontend method with all", () => {
    expect(frontendMethodNames).toHaveLength(18);
    expect([...resolveMethodSelection("all")].sort()).toEqual([...frontendMethodNames].sort());
  });

  it("read-only is exactly the Get*, List* and Watch* methods", () => {
    expect([...readOnlyMethodNames].sort()).toEqual(
      [
        "GetApplication",
        "GetNode",
        "GetSession",
        "GetTask",
        "ListApplication",
        "ListExecutor",
        "ListNodes",
        "ListSession",
        "ListTask",
        "WatchTask",
      ].sort(),
    );
    const set = resolveMethodSelection("read-only");
    for (const writer of [
      "CreateSession",
      "OpenSession",
      "CreateTask",
      "CloseSession",
      "RegisterApplication",
    ]) {
      expect(set.has(writer)).toBe(false);
    }
  });

  it("accepts names and prefix patterns, and rejects ones that match nothing", () => {
    expect([...resolveMethodSelection(["GetTask", "Watch*"])].sort()).toEqual([
      "GetTask",
      "WatchTask",
    ]);
    expect(() => resolveMethodSelection(["GetTask", "getTask", "Frobnicate*"])).toThrow(
      /no Frontend method matches "getTask", "Frobnicate\*"/,
    );
    expect(() => resolveMethodSelection("everything" as never)).toThrow(/methods must be/);
  });
});

describe("CORS origins", () => {
  it("grants nothing by default", () => {
    const policy = new CorsPolicy(undefined);
    expect(policy.enabled).toBe(false);
    expect(policy.allows("http://localhost:5173")).toBe(false);
  });

  it("has a localhost preset for development", () => {
    const policy = new CorsPolicy("localhost");
    for (const origin of [
      "http://localhost:5173",
      "https://127.0.0.1:8443",
      "http://[::1]:3000",
      "http://localhost",
    ]) {
      expect(policy.allows(origin)).toBe(true);
    }
    for (const origin of [
      "http://localhost.evil.com",
      "http://evil.com",
      "http://127.0.0.1.nip.io",
    ]) {
      expect(policy.allows(origin)).toBe(false);
    }
  });

  it("does not let a global RegExp flip between calls", () => {
    const policy = new CorsPolicy([/^https:\/\/a\.example\.com$/g]);
    expect(policy.allows("https://a.example.com")).toBe(true);
    expect(policy.allows("https://a.example.com")).toBe(true);
  });

  it("rejects a wildcard and origins with a path or trailing slash", () => {
    expect(() => new CorsPolicy(["*"])).toThrow(/"\*" is not accepted/);
    expect(() => new CorsPolicy(["https://dash.example.com/"])).toThrow(/is not an origin/);
    expect(() => new CorsPolicy(["dash.example.com"])).toThrow(/is not an origin/);
  });
});
