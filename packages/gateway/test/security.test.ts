import * as http from "node:http";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway, startGateway } from "../src/index.js";
import { captureLogger } from "./capture-logger.js";
import { clientFor, type Protocol } from "./clients.js";
import { type FakeFlame, startFakeFlame } from "./fake-flame.js";
import { rejection } from "./rejection.js";

const token = "tok-7f3a9c1e5b2d4a6f8e0c";
const allowedOrigin = "https://dash.example.com";

let flame: FakeFlame;
let gateway: Gateway;
const logger = captureLogger();

beforeAll(async () => {
  flame = await startFakeFlame();
  gateway = await startGateway({
    upstream: flame.url,
    bearerToken: token,
    methods: "read-only",
    allowedOrigins: [allowedOrigin, /^https:\/\/[a-z0-9]+\.preview\.example\.com$/],
    maxMessageBytes: 1024,
    logger,
  });
});

afterAll(async () => {
  await gateway?.close();
  await flame?.close();
});

async function drain(stream: AsyncIterable<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of stream) n++;
  return n;
}

const bearer = (value: string) => ({ headers: { authorization: `Bearer ${value}` } });
const protocols: Protocol[] = ["grpc-web", "connect", "grpc"];

describe.each(protocols)("bearer token and method allowlist over %s", (protocol) => {
  it("refuses a call without a token with Unauthenticated, before the upstream", async () => {
    const client = clientFor(protocol, gateway.url);
    const before = flame.totalCalls();
    const err = await rejection(client.getApplication({ name: "flmping" }));
    expect(err.code).toBe(Code.Unauthenticated);
    const streamErr = await rejection(drain(client.listTask({ sessionId: "s" })));
    expect(streamErr.code).toBe(Code.Unauthenticated);
    expect(flame.totalCalls()).toBe(before);
  });

  it("refuses a wrong token, and a token without the Bearer scheme", async () => {
    const client = clientFor(protocol, gateway.url);
    const before = flame.totalCalls();
    for (const authorization of [
      `Bearer ${token}x`,
      `Bearer ${token.slice(0, -1)}`,
      "Bearer ",
      token,
      `Basic ${token}`,
    ]) {
      const err = await rejection(
        client.getApplication({ name: "flmping" }, { headers: { authorization } }),
      );
      expect(err.code).toBe(Code.Unauthenticated);
      expect(err.message).not.toContain(token);
    }
    expect(flame.totalCalls()).toBe(before);
  });

  it("forwards a call with the right token, without passing the token upstream", async () => {
    const client = clientFor(protocol, gateway.url);
    const app = await client.getApplication({ name: "flmping" }, bearer(token));
    expect(app.metadata?.name).toBe("flmping");
    expect(flame.headers.GetApplication?.get("authorization")).toBeNull();
    expect(await drain(client.listTask({ sessionId: "s" }, bearer(token)))).toBe(3);
  });

  it("refuses a method outside the read-only preset with PermissionDenied, before the upstream", async () => {
    const client = clientFor(protocol, gateway.url);
    const before = flame.totalCalls();
    const err = await rejection(
      client.createSession({ sessionId: "x", session: { application: "flmping" } }, bearer(token)),
    );
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toBe("method CreateSession is not allowed by the gateway");
    const err2 = await rejection(client.createTask({ task: { sessionId: "x" } }, bearer(token)));
    expect(err2.code).toBe(Code.PermissionDenied);
    expect(flame.totalCalls()).toBe(before);
  });
});

describe("message size limit", () => {
  it("rejects an oversized request without forwarding it", async () => {
    for (const protocol of protocols) {
      const client = clientFor(protocol, gateway.url);
      const before = flame.totalCalls();
      const err = await rejection(client.getApplication({ name: "x".repeat(4096) }, bearer(token)));
      expect(err.code).toBe(Code.ResourceExhausted);
      expect(flame.totalCalls()).toBe(before);
    }
  });

  it("lets a request under the limit through", async () => {
    const client = clientFor("grpc-web", gateway.url);
    const err = await rejection(client.getApplication({ name: "y".repeat(900) }, bearer(token)));
    // The fake upstream does not know the name: the call got there.
    expect(err.code).toBe(Code.NotFound);
  });
});

describe("an oversized response", () => {
  it("is not passed to the client", async () => {
    const small = await startGateway({ upstream: flame.url, maxMessageBytes: 1024 });
    try {
      const client = clientFor("grpc-web", small.url);
      const before = flame.calls.CreateTask ?? 0;
      // ~1010 bytes go up; the echoed task is ~1040 bytes.
      const input = new Uint8Array(1000).fill(7);
      const err = await rejection(client.createTask({ task: { sessionId: "s", input } }));
      expect(err.code).toBe(Code.ResourceExhausted);
      expect(flame.calls.CreateTask).toBe(before + 1);
    } finally {
      await small.close();
    }
  });
});

/** A raw HTTP/1.1 request, so the test sets Origin and sees every header. */
function rawRequest(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Uint8Array,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const url = new URL(gateway.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method, path, headers },
      (res) => {
        let text = "";
        res.setEncoding("latin1");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const preflight = (origin: string) =>
  rawRequest("OPTIONS", "/flame.v1.Frontend/GetApplication", {
    origin,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization,content-type,x-grpc-web,x-user-agent",
  });

describe("CORS", () => {
  it("grants a preflight to an allowed origin", async () => {
    for (const origin of [allowedOrigin, "https://pr42.preview.example.com"]) {
      const res = await preflight(origin);
      expect(res.status).toBe(204);
      expect(res.headers["access-control-allow-origin"]).toBe(origin);
      expect(res.headers["access-control-allow-methods"]).toContain("POST");
      const allowed = String(res.headers["access-control-allow-headers"]).toLowerCase();
      for (const h of [
        "authorization",
        "content-type",
        "x-grpc-web",
        "x-user-agent",
        "grpc-timeout",
      ]) {
        expect(allowed).toContain(h);
      }
      expect(res.headers.vary).toContain("Origin");
    }
  });

  it("grants nothing to any other origin", async () => {
    for (const origin of [
      "https://evil.example.com",
      "https://dash.example.com.evil.com",
      "http://dash.example.com",
      "https://x.preview.example.com.evil.com",
      "null",
    ]) {
      const res = await preflight(origin);
      expect(res.status).toBe(403);
      expect(res.headers["access-control-allow-origin"]).toBeUndefined();
      expect(res.headers["access-control-allow-headers"]).toBeUndefined();
    }
  });

  it("grants an actual request from an allowed origin and exposes the gRPC-Web status", async () => {
    const client = clientFor("grpc-web", gateway.url);
    let header: Headers | undefined;
    await client.getApplication(
      { name: "flmping" },
      {
        headers: { origin: allowedOrigin, authorization: `Bearer ${token}` },
        onHeader: (h) => {
          header = h;
        },
      },
    );
    expect(header?.get("access-control-allow-origin")).toBe(allowedOrigin);
    expect(header?.get("access-control-expose-headers")?.toLowerCase()).toContain("grpc-status");
  });

  it("refuses an actual request from another origin, before the upstream", async () => {
    const before = flame.totalCalls();
    const res = await rawRequest(
      "POST",
      "/flame.v1.Frontend/GetApplication",
      {
        origin: "https://evil.example.com",
        "content-type": "application/json",
        "connect-protocol-version": "1",
        authorization: `Bearer ${token}`,
      },
      new TextEncoder().encode(JSON.stringify({ name: "flmping" })),
    );
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({ code: "permission_denied" });
    expect(res.headers["access-control-allow-origin"]).toBeUndefined();
    expect(flame.totalCalls()).toBe(before);
  });
});

describe("without a gateway token", () => {
  it("forwards the client's own Authorization header to the upstream", async () => {
    const open = await startGateway({ upstream: flame.url, methods: ["GetApplication", "List*"] });
    try {
      const client = clientFor("connect", open.url);
      await client.getApplication({ name: "flmping" }, bearer("for-flame"));
      expect(flame.headers.GetApplication?.get("authorization")).toBe("Bearer for-flame");
      await client.listApplication({});
      const err = await rejection(client.getTask({ sessionId: "s", taskId: "1" }));
      expect(err.code).toBe(Code.PermissionDenied);
    } finally {
      await open.close();
    }
  });
});

describe("what the gateway reveals", () => {
  it("counts refusals by reason", () => {
    const { rejected } = gateway.stats();
    expect(rejected.unauthenticated).toBeGreaterThan(0);
    expect(rejected.method).toBeGreaterThan(0);
    expect(rejected.origin).toBeGreaterThan(0);
  });

  it("never writes the bearer token to its logs", () => {
    expect(logger.lines.some((l) => l.includes("call refused"))).toBe(true);
    expect(logger.text()).not.toContain(token);
    expect(logger.text()).not.toContain(token.slice(4, 16));
  });
});
