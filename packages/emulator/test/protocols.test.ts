import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { Code, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { Frontend, TaskState } from "@flame-ts/core/gen";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { originAllowed, startEmulator } from "../src/index.js";
import {
  bytes,
  collect,
  expectCode,
  type Harness,
  startHarness,
  stateOf,
  text,
  waitForTask,
} from "./helpers.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.emulator.close());

const roundTrip = async (transport: Transport, sessionId: string) => {
  const client = createClient(Frontend, transport);
  await client.createSession({ sessionId, session: { application: "flmexec" } });
  await client.createTask({ task: { sessionId, input: bytes("hi") } });
  const watched = await collect(client.watchTask({ sessionId, taskId: "1" }));
  const task = watched.at(-1) ?? (await client.getTask({ sessionId, taskId: "1" }));
  const done =
    task.status?.state === TaskState.Succeed ? task : await waitForTask(client, sessionId, "1");
  expect(text(done.spec?.output)).toBe("hi");
  expect((await collect(client.listTask({ sessionId }))).map((t) => t.metadata?.id)).toEqual(["1"]);
  await expectCode(client.getSession({ sessionId: "missing" }), Code.NotFound);
};

describe("one port, three protocols", () => {
  it("speaks gRPC-Web over HTTP/1.1", async () => {
    await roundTrip(createGrpcWebTransport({ baseUrl: h.emulator.url, httpVersion: "1.1" }), "gw");
  });

  it("speaks the Connect protocol over HTTP/1.1", async () => {
    await roundTrip(createConnectTransport({ baseUrl: h.emulator.url, httpVersion: "1.1" }), "cp");
  });

  it("speaks gRPC-Web over HTTP/2 too", async () => {
    await roundTrip(createGrpcWebTransport({ baseUrl: h.emulator.url, httpVersion: "2" }), "gw2");
  });

  it("with only gRPC enabled, refuses gRPC-Web and Connect", async () => {
    const grpcOnly = await startEmulator({
      protocols: { grpc: true, grpcWeb: false, connect: false },
    });
    try {
      const grpc = createClient(Frontend, createGrpcTransport({ baseUrl: grpcOnly.url }));
      expect((await grpc.listApplication({})).applications).toHaveLength(3);
      for (const transport of [
        createGrpcWebTransport({ baseUrl: grpcOnly.url, httpVersion: "1.1" }),
        createGrpcWebTransport({ baseUrl: grpcOnly.url, httpVersion: "2" }),
        createConnectTransport({ baseUrl: grpcOnly.url, httpVersion: "1.1" }),
      ]) {
        await expect(createClient(Frontend, transport).listApplication({})).rejects.toThrow();
      }
      // None of them reached the service: only the gRPC call was counted.
      expect(grpcOnly.stats().calls).toEqual({ ListApplication: 1 });
    } finally {
      await grpcOnly.close();
    }
  });

  it("carries a 16 MiB payload both ways when maxRequestBytes allows it", async () => {
    const roomy = await startHarness({ maxRequestBytes: 32 * 1024 * 1024 });
    onTestFinished(() => roomy.emulator.close());
    const client = roomy.client;
    const big = new Uint8Array(16 * 1024 * 1024).fill(7);
    await client.createSession({ sessionId: "big", session: { application: "flmexec" } });
    await client.createTask({ task: { sessionId: "big", input: big } });
    const done = await waitForTask(client, "big", "1");
    expect(stateOf(done)).toBe(TaskState.Succeed);
    expect(done.spec?.output?.length).toBe(big.length);
    expect(done.spec?.output?.[big.length - 1]).toBe(7);
  });

  it("breaks an HTTP/1.1 gRPC-Web stream on dropStreams", async () => {
    const client = createClient(
      Frontend,
      createGrpcWebTransport({ baseUrl: h.emulator.url, httpVersion: "1.1" }),
    );
    h.emulator.pause();
    try {
      await client.createSession({ sessionId: "h1drop", session: { application: "flmexec" } });
      await client.createTask({ task: { sessionId: "h1drop" } });
      const watching = collect(client.watchTask({ sessionId: "h1drop", taskId: "1" })).then(
        () => "ended",
        () => "errored",
      );
      while (h.emulator.stats().openStreams === 0) await new Promise((r) => setTimeout(r, 10));
      h.emulator.dropStreams();
      expect(await watching).toBe("errored");
    } finally {
      h.emulator.resume();
    }
  });
});

/** Sends a raw HTTP/1.1 request and returns status and headers. */
const rawRequest = (url: string, method: string, headers: Record<string, string>, body?: string) =>
  new Promise<{ status: number; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on("error", reject);
    req.end(body);
  });

describe("CORS", () => {
  const path = "/flame.v1.Frontend/ListApplication";
  const preflight = (url: string, origin: string) =>
    rawRequest(url + path, "OPTIONS", {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type,x-grpc-web,x-user-agent,x-custom",
    });

  it("grants a preflight from any localhost origin by default", async () => {
    for (const origin of ["http://localhost:5173", "http://127.0.0.1:3000", "https://[::1]:8443"]) {
      const res = await preflight(h.emulator.url, origin);
      expect(res.status).toBe(204);
      expect(res.headers["access-control-allow-origin"]).toBe(origin);
      expect(res.headers["access-control-allow-methods"]).toContain("POST");
      expect(res.headers["access-control-allow-headers"]).toMatch(/x-grpc-web/i);
      expect(res.headers["access-control-allow-headers"]).toMatch(/x-custom/i);
    }
  });

  it("gives no grant to another origin", async () => {
    const res = await preflight(h.emulator.url, "https://evil.example.com");
    expect(res.headers["access-control-allow-origin"]).toBeUndefined();
    expect(res.status).not.toBe(204);
  });

  it("exposes gRPC-Web trailers on the actual response for an allowed origin", async () => {
    const res = await rawRequest(
      h.emulator.url + path,
      "POST",
      {
        origin: "http://localhost:5173",
        "content-type": "application/json",
      },
      "{}",
    );
    expect(res.status).toBe(200);
    expect(res.headers["access-control-allow-origin"]).toBe("http://localhost:5173");
    expect(res.headers["access-control-expose-headers"]).toMatch(/grpc-status/i);
  });

  it("follows a configured allowlist of strings and RegExps", async () => {
    const listed = await startEmulator({
      corsOrigins: ["https://dash.example.com", /^https:\/\/.*\.preview\.example$/],
    });
    try {
      expect((await preflight(listed.url, "https://dash.example.com")).status).toBe(204);
      expect((await preflight(listed.url, "https://pr-1.preview.example")).status).toBe(204);
      const local = await preflight(listed.url, "http://localhost:5173");
      expect(local.headers["access-control-allow-origin"]).toBeUndefined();
    } finally {
      await listed.close();
    }
    expect(originAllowed("http://localhost", "localhost")).toBe(true);
    expect(originAllowed("http://localhost.evil.com", "localhost")).toBe(false);
  });
});

describe("TLS", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "flame-emu-tls-"));
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
      ],
      { stdio: "ignore" },
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("serves gRPC over HTTP/2 and gRPC-Web over HTTP/1.1 with TLS", async () => {
    const cert = readFileSync(join(dir, "cert.pem"), "utf8");
    const key = readFileSync(join(dir, "key.pem"), "utf8");
    const secure = await startEmulator({ tls: { cert, key } });
    try {
      expect(secure.url.startsWith("https://127.0.0.1:")).toBe(true);
      const client = createClient(
        Frontend,
        createGrpcTransport({ baseUrl: secure.url, nodeOptions: { ca: cert } }),
      );
      expect((await client.listApplication({})).applications).toHaveLength(3);
      // HTTP/1.1 by ALPN on the same TLS port, for gRPC-Web.
      const web = createClient(
        Frontend,
        createGrpcWebTransport({
          baseUrl: secure.url,
          httpVersion: "1.1",
          nodeOptions: { ca: cert },
        }),
      );
      expect((await web.listApplication({})).applications).toHaveLength(3);
      secure.dropStreams();
      const untrusting = createClient(Frontend, createGrpcTransport({ baseUrl: secure.url }));
      await expect(untrusting.listApplication({})).rejects.toThrow();
    } finally {
      await secure.close();
    }
  });

  it("closes an HTTP/1.1-over-TLS connection whose request head never ends, and an idle one", async () => {
    const cert = readFileSync(join(dir, "cert.pem"), "utf8");
    const key = readFileSync(join(dir, "key.pem"), "utf8");
    const secure = await startEmulator({
      tls: { cert, key },
      headersTimeoutMs: 500,
      keepAliveTimeoutMs: 500,
    });
    const open = (head: string) =>
      new Promise<tls.TLSSocket>((resolve, reject) => {
        const socket = tls.connect(
          { host: "127.0.0.1", port: secure.port, ca: cert, ALPNProtocols: ["http/1.1"] },
          () => {
            socket.write(head);
            resolve(socket);
          },
        );
        socket.once("error", reject);
        socket.resume();
      });
    const closed = (socket: tls.TLSSocket) =>
      new Promise<void>((resolve) => socket.once("close", () => resolve()));
    try {
      // A head trickled in a byte at a time (slowloris) ...
      const slow = await open("POST /flame.v1.Frontend/GetTask HTTP/1.1\r\nHost: x\r\n");
      const trickle = setInterval(() => slow.write("x"), 100);
      // ... and a connection left idle after a whole request.
      const idle = await open("OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n");
      try {
        await Promise.all([closed(slow), closed(idle)]);
      } finally {
        clearInterval(trickle);
      }
      expect(slow.alpnProtocol).toBe("http/1.1");
    } finally {
      await secure.close();
    }
  });
});
