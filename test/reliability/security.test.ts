// Who gets in, and what leaks. The core client over gRPC-Web through the
// gateway to a gRPC-only emulator, with a token, a read-only allowlist, an
// origin allowlist and a size limit: every refusal is a typed FlameError,
// and the emulator's own call counters prove none of them got through.
// Then: no bearer token and no CA material in any log line or error message,
// from the client, the node transport or the gateway.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { Connection, FlameError, type Logger } from "@flame-ts/core";
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import { type Gateway, type GatewayLogger, startGateway } from "@flame-ts/gateway";
import { connect } from "@flame-ts/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestPki, type TestPki } from "../../packages/node/test/helpers/pki.js";
import { rejection } from "./helpers.js";
import { SilentServer } from "./tcp-proxy.js";

const token = "sekrit-4b1d9e7c2a6f8035";
const origin = "https://dash.example.com";

let pki: TestPki;
let emulator: Emulator;
let tlsEmulator: Emulator;
let gateway: Gateway;
let tlsGateway: Gateway;
let silent: SilentServer;
const lines: string[] = [];
const connections: Connection[] = [];

const keep =
  (level: string) =>
  (message: string, fields?: Record<string, unknown>): void => {
    lines.push(`${level} ${message} ${fields === undefined ? "" : JSON.stringify(fields)}`);
  };
const logger: Logger & GatewayLogger = {
  debug: keep("debug"),
  info: keep("info"),
  warn: keep("warn"),
  error: keep("error"),
};

beforeAll(async () => {
  pki = makeTestPki();
  emulator = await startEmulator({
    port: 0,
    protocols: { grpc: true, grpcWeb: false, connect: false },
  });
  tlsEmulator = await startEmulator({ port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } });
  gateway = await startGateway({
    upstream: emulator.url,
    bearerToken: token,
    methods: "read-only",
    allowedOrigins: [origin],
    maxMessageBytes: 4096,
    logger,
  });
  // A gateway to a TLS upstream whose certificate its CA file did not sign.
  tlsGateway = await startGateway({ upstream: tlsEmulator.url, caFile: pki.otherCaFile, logger });
  silent = new SilentServer();
  await silent.start();
});
afterAll(async () => {
  for (const c of connections) await c.close();
  await gateway?.close();
  await tlsGateway?.close();
  await emulator?.close();
  await tlsEmulator?.close();
  await silent?.close();
  pki?.cleanup();
});

function viaGateway(url = gateway.url) {
  const c = new Connection(createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" }), {
    retry: false,
    logger,
  });
  connections.push(c);
  return c;
}

const upstreamCalls = () => Object.values(emulator.stats().calls).reduce((a, b) => a + b, 0);
const auth = (value: string) => ({ headers: { authorization: value } });

describe("the gateway lets no one in where they do not belong", () => {
  it("a right token and an allowed method get through (the emulator counts them)", async () => {
    const before = upstreamCalls();
    const apps = await viaGateway().listApplications(auth(`Bearer ${token}`));
    expect(apps.length).toBeGreaterThan(0);
    expect(upstreamCalls()).toBe(before + 1);
  });

  it("a missing or wrong token is unauthenticated, and never reaches the emulator", async () => {
    const c = viaGateway();
    const before = upstreamCalls();
    for (const options of [
      undefined,
      auth(`Bearer ${token}0`),
      auth(`Bearer ${token.slice(1)}`),
      auth(token),
      auth(`Basic ${btoa(`u:${token}`)}`),
    ]) {
      const err = (await rejection(c.listApplications(options))) as FlameError;
      expect(FlameError.is(err)).toBe(true);
      expect(err.kind).toBe("unauthenticated");
      expect(err.method).toBe("ListApplication");
    }
    expect(upstreamCalls()).toBe(before);
  });

  it("a method outside the allowlist is permission-denied, and never reaches the emulator", async () => {
    const c = viaGateway();
    const session = await viaGateway()
      .getSession("none", auth(`Bearer ${token}`))
      .catch((e) => e);
    expect((session as FlameError).kind).toBe("not-found"); // a read goes through
    const before = upstreamCalls();
    const writes: [string, () => Promise<unknown>][] = [
      ["CreateSession", () => c.createSession({ application: "flmexec" }, auth(`Bearer ${token}`))],
      ["RegisterApplication", () => c.registerApplication("x", {}, auth(`Bearer ${token}`))],
      ["DeleteSession", () => c.deleteSession("x", auth(`Bearer ${token}`))],
      ["CloseSession", () => c.closeSession("x", auth(`Bearer ${token}`))],
    ];
    for (const [method, call] of writes) {
      const err = (await rejection(call())) as FlameError;
      expect(err.kind, method).toBe("permission-denied");
      expect(err.method).toBe(method);
    }
    expect(upstreamCalls()).toBe(before);
  });

  it("an oversized message is refused, and never reaches the emulator", async () => {
    const c = viaGateway();
    const before = upstreamCalls();
    const err = (await rejection(
      c.getApplication("x".repeat(10_000), auth(`Bearer ${token}`)),
    )) as FlameError;
    expect(FlameError.is(err)).toBe(true);
    expect(err.method).toBe("GetApplication");
    expect(err.code).toBe(8); // ResourceExhausted
    expect(upstreamCalls()).toBe(before);
  });

  it("an origin outside the allowlist gets no CORS grant, and never reaches the emulator", async () => {
    const before = upstreamCalls();
    const path = `${gateway.url}/flame.v1.Frontend/ListApplication`;
    for (const evil of ["https://evil.example.com", "https://dash.example.com.evil.net", "null"]) {
      const preflight = await fetch(path, {
        method: "OPTIONS",
        headers: {
          origin: evil,
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type,authorization,x-grpc-web",
        },
      });
      expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
      const actual = await fetch(path, {
        method: "POST",
        headers: {
          origin: evil,
          "content-type": "application/grpc-web+proto",
          "x-grpc-web": "1",
          authorization: `Bearer ${token}`,
        },
        body: new Uint8Array([0, 0, 0, 0, 0]),
      });
      expect(actual.headers.get("access-control-allow-origin")).toBeNull();
      await actual.arrayBuffer();
    }
    const good = await fetch(path, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST" },
    });
    expect(good.headers.get("access-control-allow-origin")).toBe(origin);
    expect(upstreamCalls()).toBe(before);
  });
});

/** Every string a failure could show a user or an operator. */
function exposed(err: unknown): string {
  const e = err as FlameError;
  const parts = [String(err), e.message, e.serverMessage ?? "", e.stack ?? ""];
  let cause: unknown = e.cause;
  for (let i = 0; i < 5 && cause instanceof Error; i++) {
    parts.push(String(cause), cause.message, cause.stack ?? "");
    cause = cause.cause;
  }
  return parts.join("\n");
}

describe("no secret appears in logs or error messages", () => {
  const caBody = () =>
    [pki.caPem, pki.serverKey]
      .flatMap((pem) => pem.split("\n"))
      .filter((l) => l.length > 20 && !l.startsWith("-----"));

  it("bearer tokens: client and gateway failures, at debug level", async () => {
    const errors: unknown[] = [];
    const c = viaGateway();
    errors.push(await rejection(c.listApplications(auth(`Bearer ${token}x`))));
    errors.push(await rejection(c.createSession({ application: "a" }, auth(`Bearer ${token}`))));
    // Straight to a server that never answers, with the token on the call.
    const s = await connect(silent.url, { timeoutMs: 150, logger, retry: { maxAttempts: 2 } });
    connections.push(s);
    errors.push(await rejection(s.listSessions(auth(`Bearer ${token}`))));
    const refused = await connect("http://127.0.0.1:1", { logger, retry: { initialDelayMs: 1 } });
    connections.push(refused);
    errors.push(await rejection(refused.getSession("x", auth(`Bearer ${token}`))));
    expect(errors.every((e) => FlameError.is(e))).toBe(true);
    const text = [...errors.map(exposed), ...lines].join("\n");
    expect(lines.length).toBeGreaterThan(5); // the loggers did speak
    expect(text).not.toContain(token);
    expect(text).not.toContain(token.slice(3, 15));
  });

  it("CA and key material: TLS failures of the node client and of the gateway", async () => {
    const errors: unknown[] = [];
    const wrongCa = await connect(tlsEmulator.url, {
      caFile: pki.otherCaFile,
      retry: false,
      logger,
    });
    connections.push(wrongCa);
    errors.push(await rejection(wrongCa.listApplications()));
    // A CA file that is not a certificate: refused before any call.
    errors.push(await rejection(connect(tlsEmulator.url, { caFile: keyFile() })));
    const viaTls = viaGateway(tlsGateway.url);
    errors.push(await rejection(viaTls.listApplications()));
    expect(errors.every((e) => FlameError.is(e))).toBe(true);
    const text = [...errors.map(exposed), ...lines].join("\n");
    for (const line of caBody()) expect(text).not.toContain(line);
  });
});

/** The server's private key written as a file, to pass where a CA belongs. */
function keyFile(): string {
  const path = join(pki.dir, "key-as-ca.pem");
  writeFileSync(path, pki.serverKey);
  return path;
}
