// What the gateway holds back from the upstream and from its log, over real
// sockets: deadlines up to gRPC's maximum, headers that must never cross
// (forwarding, hop-by-hop, request trailers), and refusals logged at a
// bounded rate with bounded fields.
import * as http from "node:http";
import * as http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import {
  GetTaskRequestSchema,
  ListTaskRequestSchema,
  WatchTaskRequestSchema,
} from "@flame-ts/core/gen";
import { describe, expect, it } from "vitest";
import { maxDeadlineMs, maxLoggedFieldLength, startGateway } from "../src/index.js";
import { captureLogger } from "./capture-logger.js";
import { clientFor } from "./clients.js";
import { eventually } from "./fake-flame.js";
import { gatewayToFakeFlame } from "./gateway-fixture.js";
import { rejection } from "./rejection.js";

const env = gatewayToFakeFlame();

/** A gRPC message frame: flag byte, big-endian length, message. */
function grpcFrame(message: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

const getTask = grpcFrame(
  toBinary(GetTaskRequestSchema, create(GetTaskRequestSchema, { sessionId: "s", taskId: "7" })),
);
const getTaskPath = "/flame.v1.Frontend/GetTask";

interface RawAnswer {
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** A gRPC call written by hand on its own HTTP/2 connection, with optional request trailers. */
function rawGrpc(
  headers: http2.OutgoingHttpHeaders,
  body: Buffer,
  requestTrailers?: http2.OutgoingHttpHeaders,
): Promise<RawAnswer> {
  const client = http2.connect(env.gateway.url);
  return new Promise<RawAnswer>((resolve, reject) => {
    const req = client.request(
      {
        ":method": "POST",
        ":path": getTaskPath,
        "content-type": "application/grpc",
        te: "trailers",
        ...headers,
      },
      { waitForTrailers: requestTrailers !== undefined },
    );
    if (requestTrailers !== undefined) {
      req.once("wantTrailers", () => req.sendTrailers(requestTrailers));
    }
    const answer: RawAnswer = { headers: {}, trailers: {}, body: Buffer.alloc(0) };
    req.once("response", (h) => {
      answer.headers = h;
    });
    req.once("trailers", (t) => {
      answer.trailers = t;
    });
    req.on("data", (chunk: Buffer) => {
      answer.body = Buffer.concat([answer.body, chunk]);
    });
    req.once("end", () => resolve(answer));
    req.once("error", reject);
    req.end(body);
  }).finally(() => client.close());
}

describe("deadlines up to gRPC's maximum", () => {
  it.each(["99999999H", "597H", "99999999M"])(
    "grpc-timeout %s reaches the upstream held to the longest Node timer",
    async (timeout) => {
      const answer = await rawGrpc({ "grpc-timeout": timeout }, getTask);
      expect(answer.trailers["grpc-status"] ?? answer.headers["grpc-status"]).toBe("0");
      const seen = env.flame.timeoutMs.GetTask ?? 0;
      expect(seen).toBeGreaterThan(maxDeadlineMs - 60_000 - 10_000);
      expect(seen).toBeLessThanOrEqual(maxDeadlineMs);
    },
  );

  it("a deadline well inside the limit passes unchanged", async () => {
    await rawGrpc({ "grpc-timeout": "90S" }, getTask);
    const seen = env.flame.timeoutMs.GetTask ?? 0;
    expect(seen).toBeGreaterThan(80_000);
    expect(seen).toBeLessThanOrEqual(90_000);
  });

  it("a deadline past eight digits of milliseconds reaches the upstream in minutes", async () => {
    // 30 hours is 108,000,000 ms: nine digits, which connect's client would write as they are.
    const answer = await rawGrpc({ "grpc-timeout": "30H" }, getTask);
    expect(answer.trailers["grpc-status"]).toBe("0");
    const seen = env.flame.timeoutMs.GetTask ?? 0;
    expect(seen).toBeGreaterThan(108_000_000 - 10_000);
    expect(seen).toBeLessThanOrEqual(108_000_000);
  });

  it("a watch with grpc-timeout 99999999H stays open", async () => {
    const client = http2.connect(env.gateway.url);
    const cancelled = env.flame.streamsCancelled;
    try {
      const watch = client.request({
        ":method": "POST",
        ":path": "/flame.v1.Frontend/WatchTask",
        "content-type": "application/grpc",
        te: "trailers",
        "grpc-timeout": "99999999H",
      });
      let ended = false;
      watch.once("trailers", () => {
        ended = true;
      });
      watch.on("error", () => {});
      watch.end(
        grpcFrame(
          toBinary(
            WatchTaskRequestSchema,
            create(WatchTaskRequestSchema, { sessionId: "s", taskId: "long" }),
          ),
        ),
      );
      await new Promise((resolve) => watch.once("data", resolve));
      // The gateway runs in this process: a deadline timer it armed for
      // 1 ms (what Node does with longer ones) fires before this one.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(ended).toBe(false);
      expect(env.flame.streamsCancelled).toBe(cancelled);
      watch.close(http2.constants.NGHTTP2_CANCEL);
      await eventually(() => env.flame.streamsCancelled === cancelled + 1, "the watch cancelled");
    } finally {
      client.close();
    }
  });

  it("connect-timeout-ms 9999999999 works over the Connect protocol", async () => {
    const response = await fetch(`${env.gateway.url}${getTaskPath}`, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-timeout-ms": "9999999999" },
      body: JSON.stringify({ sessionId: "s", taskId: "8" }),
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { metadata?: { id?: string } }).metadata?.id).toBe("8");
    expect(env.flame.timeoutMs.GetTask).toBeGreaterThan(maxDeadlineMs - 10_000);
  });
});

describe("message compression", () => {
  it("is neither asked of the upstream nor applied to answers", async () => {
    const list = grpcFrame(
      toBinary(ListTaskRequestSchema, create(ListTaskRequestSchema, { sessionId: "big:3:2000" })),
    );
    const answer = await rawGrpc(
      { ":path": "/flame.v1.Frontend/ListTask", "grpc-accept-encoding": "gzip" },
      list,
    );
    expect(answer.trailers["grpc-status"]).toBe("0");
    expect(answer.headers["grpc-encoding"]).toBeUndefined();
    // Three messages of over 2,000 bytes, each with the "not compressed" flag.
    let at = 0;
    for (let i = 0; i < 3; i++) {
      expect(answer.body[at]).toBe(0);
      const length = answer.body.readUInt32BE(at + 1);
      expect(length).toBeGreaterThan(2_000);
      at += 5 + length;
    }
    expect(at).toBe(answer.body.length);
    expect(env.flame.headers.ListTask?.get("grpc-accept-encoding") ?? null).toBeNull();
  });

  it("a compressed request is refused with Unimplemented, before the upstream", async () => {
    const before = env.flame.totalCalls();
    const compressed = Buffer.from(getTask);
    compressed[0] = 1;
    const answer = await rawGrpc({ "grpc-encoding": "gzip" }, compressed);
    expect(answer.trailers["grpc-status"] ?? answer.headers["grpc-status"]).toBe(
      String(Code.Unimplemented),
    );
    expect(env.flame.totalCalls()).toBe(before);
  });
});

const forwardingHeaders = {
  forwarded: "for=203.0.113.9",
  via: "1.1 evil",
  "x-forwarded-for": "203.0.113.9",
  "x-forwarded-host": "env.flame.internal",
  "x-forwarded-proto": "https",
  "x-real-ip": "203.0.113.9",
};

describe("headers that never reach the upstream", () => {
  it("over HTTP/2: forwarding headers and request trailers", async () => {
    const answer = await rawGrpc({ "x-request-id": "h2-call", ...forwardingHeaders }, getTask, {
      authorization: "Bearer stolen",
      "x-trailer": "from the client",
      "grpc-timeout": "1n",
    });
    expect(answer.trailers["grpc-status"]).toBe("0");
    const seen = env.flame.headers.GetTask as Headers;
    expect(seen.get("x-request-id")).toBe("h2-call");
    for (const name of [...Object.keys(forwardingHeaders), "authorization", "x-trailer"]) {
      expect(seen.has(name), name).toBe(false);
    }
    // The request trailer's grpc-timeout was not taken as a deadline either.
    expect(env.flame.timeoutMs.GetTask).toBeUndefined();
  });

  it("over HTTP/1.1: hop-by-hop headers, those Connection names, and chunked-body trailers", async () => {
    const url = new URL(env.gateway.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          method: "POST",
          path: getTaskPath,
          headers: {
            "content-type": "application/grpc-web+proto",
            "x-request-id": "h1-call",
            connection: "keep-alive, x-hop-secret",
            "x-hop-secret": "only for the next hop",
            "keep-alive": "timeout=5",
            "proxy-authorization": "Basic c2VjcmV0",
            upgrade: "websocket",
            trailer: "x-trailer",
            ...forwardingHeaders,
          },
        },
        (res) => {
          res.resume();
          res.once("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.once("error", reject);
      req.write(getTask);
      req.addTrailers({ "x-trailer": "from the client", authorization: "Bearer stolen" });
      req.end();
    });
    expect(status).toBe(200);
    const seen = env.flame.headers.GetTask as Headers;
    expect(seen.get("x-request-id")).toBe("h1-call");
    for (const name of [
      ...Object.keys(forwardingHeaders),
      "connection",
      "x-hop-secret",
      "keep-alive",
      "proxy-authorization",
      "upgrade",
      "trailer",
      "x-trailer",
      "authorization",
    ]) {
      expect(seen.has(name), name).toBe(false);
    }
  });
});

describe("refusals in the log", () => {
  it("are written at a bounded rate with bounded fields, and the token is checked first", async () => {
    const logger = captureLogger();
    const guarded = await startGateway({
      upstream: env.flame.url,
      bearerToken: "right-token",
      allowedOrigins: ["https://dash.example.com"],
      refusalLogsPerSecond: 5,
      logger,
    });
    try {
      const client = clientFor("grpc", guarded.url);
      const origin = `https://${"a".repeat(8_000)}.example.com`;
      const calls = 60;
      const before = env.flame.totalCalls();
      const started = Date.now();
      for (let i = 0; i < calls; i++) {
        const err = await rejection(
          client.getApplication({ name: "flmping" }, { headers: { origin } }),
        );
        // No token and a foreign origin: the token is what is reported.
        expect(err.code).toBe(Code.Unauthenticated);
      }
      const seconds = (Date.now() - started) / 1000;
      expect(env.flame.totalCalls()).toBe(before);
      expect(guarded.stats().rejected.unauthenticated).toBe(calls);
      const refusals = logger.lines.filter((line) => line.startsWith("warn call refused"));
      // A bucket of 5 that refills at 5 a second.
      expect(refusals.length).toBeGreaterThan(0);
      expect(refusals.length).toBeLessThanOrEqual(5 + Math.ceil(seconds * 5));
      expect(refusals.length).toBeLessThan(calls);
      for (const line of refusals) {
        expect(line.length).toBeLessThan(maxLoggedFieldLength * 6);
        expect(line).toContain("(8020 chars)");
      }
      // Once the bucket refills, the next refusal is written.
      const after = await rejection(
        new Promise((resolve) => setTimeout(resolve, 400)).then(() =>
          client.getApplication({ name: "flmping" }),
        ),
      );
      expect(after.code).toBe(Code.Unauthenticated);
      // Every refusal is either a line or counted as dropped in a later line.
      const lines = logger.lines.filter((line) => line.startsWith("warn call refused"));
      const dropped = lines.reduce(
        (n, line) => n + Number(/"suppressed":(\d+)/.exec(line)?.[1] ?? 0),
        0,
      );
      expect(lines.length + dropped).toBe(calls + 1);
    } finally {
      await guarded.close();
    }
  });

  it("upstream failures are written at a bounded rate too", async () => {
    const logger = captureLogger();
    // Nothing listens on port 1: every call fails Unavailable.
    const lonely = await startGateway({
      upstream: "http://127.0.0.1:1",
      refusalLogsPerSecond: 3,
      logger,
    });
    try {
      const client = clientFor("grpc", lonely.url);
      const calls = 30;
      for (let i = 0; i < calls; i++) {
        expect((await rejection(client.getApplication({ name: "x" }))).code).toBe(Code.Unavailable);
      }
      const lines = logger.lines.filter((line) => line.startsWith("warn upstream call failed"));
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.length).toBeLessThan(calls);
      const dropped = lines.reduce(
        (n, line) => n + Number(/"suppressed":(\d+)/.exec(line)?.[1] ?? 0),
        0,
      );
      expect(lines.length + dropped).toBeLessThanOrEqual(calls);
    } finally {
      await lonely.close();
    }
  });
});
