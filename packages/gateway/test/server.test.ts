// The gateway's one port: Node's HTTP/1.1 server listens and hands HTTP/2
// connections to Node's HTTP/2 server. These tests attack it over real
// sockets: Node's HTTP/1.1 timers must run on the cleartext port and over
// TLS, a connection that never says which protocol it speaks must be
// dropped, idle HTTP/2 connections closed and stream limits offered, with
// Nagle's algorithm off on every accepted socket (otherwise gRPC-Web's
// trailer frame, a second small write, waits for the client's delayed ACK).
import * as http from "node:http";
import * as http2 from "node:http2";
import type { Socket } from "node:net";
import * as net from "node:net";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ConnectionLimits, type ListeningServer, listen } from "../src/server.js";
import { makeCertificates, type TestCertificates } from "./certificates.js";

/** The flag Node keeps on a TCP socket for setNoDelay (internal, hence the check). */
function nagleOff(socket: Socket): boolean {
  const flag = Object.getOwnPropertySymbols(socket).find((s) => s.description === "kSetNoDelay");
  if (flag === undefined) throw new Error("this Node keeps no kSetNoDelay flag on sockets");
  return (socket as unknown as Record<symbol, unknown>)[flag] === true;
}

/** The TCP socket under a request: below HTTP/2's session and TLS, where Nagle lives. */
function tcpSocketOf(req: http.IncomingMessage | http2.Http2ServerRequest): Socket {
  let socket: unknown = req.socket;
  if ("stream" in req) {
    const session = req.stream.session as unknown as Record<symbol, unknown>;
    const key = Object.getOwnPropertySymbols(session).find((s) => s.description === "socket");
    if (key === undefined) throw new Error("this Node keeps no socket symbol on sessions");
    socket = session[key];
  }
  const parent = (socket as { _parent?: unknown })._parent;
  return (parent instanceof net.Socket ? parent : socket) as Socket;
}

const testLimits: ConnectionLimits = {
  maxStreamsPerConnection: 7,
  idleTimeoutMs: 300,
  headersTimeoutMs: 300,
  requestTimeoutMs: 600,
};

/**
 * A server whose listener records the socket of each request and answers
 * 200, except `/hold`, answered only when the client goes away.
 */
async function recordingServer(tlsFiles?: TestCertificates, limits = testLimits) {
  const sockets: Socket[] = [];
  const server = await listen(
    (req, res) => {
      sockets.push(tcpSocketOf(req));
      if (req.url === "/hold") return;
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
    },
    {
      port: 0,
      host: "127.0.0.1",
      tls: tlsFiles && { cert: tlsFiles.cert, key: tlsFiles.key },
      limits,
    },
  );
  return { server, sockets };
}

function http1Get(server: ListeningServer, secure?: TestCertificates): Promise<number> {
  const request = secure
    ? (cb: (res: http.IncomingMessage) => void) =>
        // ALPN "http/1.1" only, so the secure server takes its HTTP/1.1 path.
        tls
          .connect({
            port: server.port,
            host: "127.0.0.1",
            ca: secure.caPem,
            ALPNProtocols: ["http/1.1"],
            servername: "localhost",
          })
          .once("secureConnect", function (this: tls.TLSSocket) {
            const req = http.request(
              { createConnection: () => this, path: "/", headers: { connection: "close" } },
              cb,
            );
            req.end();
          })
    : (cb: (res: http.IncomingMessage) => void) =>
        http.get({ port: server.port, host: "127.0.0.1", path: "/", agent: false }, cb);
  return new Promise((resolve, reject) => {
    const started = request((res) => {
      res.resume();
      res.once("end", () => resolve(res.statusCode ?? 0));
    });
    started.once("error", reject);
  });
}

let certs: TestCertificates;
beforeAll(() => {
  certs = makeCertificates();
});
afterAll(() => certs.remove());

describe("accepted connections have Nagle's algorithm off", () => {
  it("HTTP/1.1 without TLS (gRPC-Web from browsers)", async () => {
    const { server, sockets } = await recordingServer();
    try {
      expect(await http1Get(server)).toBe(200);
      expect(sockets).toHaveLength(1);
      expect(nagleOff(sockets[0] as Socket)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it("HTTP/1.1 over TLS", async () => {
    const { server, sockets } = await recordingServer(certs);
    try {
      expect(await http1Get(server, certs)).toBe(200);
      expect(sockets).toHaveLength(1);
      expect(nagleOff(sockets[0] as Socket)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it("HTTP/2 without TLS (gRPC)", async () => {
    const { server, sockets } = await recordingServer();
    const client = http2.connect(`http://127.0.0.1:${server.port}`);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = client.request({ ":path": "/" });
        req.once("response", (headers) => resolve(Number(headers[":status"])));
        req.once("error", reject);
        req.resume();
        req.end();
      });
      expect(status).toBe(200);
      expect(sockets).toHaveLength(1);
      expect(nagleOff(sockets[0] as Socket)).toBe(true);
    } finally {
      client.close();
      await server.close();
    }
  });
});

/** Opens a raw connection (TLS with ALPN http/1.1 when `secure`), writes `bytes`, and resolves with all it got once the server closes it. */
function untilClosed(
  server: ListeningServer,
  bytes: string,
  secure?: TestCertificates,
): Promise<string> {
  return new Promise((resolve) => {
    const socket: net.Socket = secure
      ? tls.connect({
          port: server.port,
          host: "127.0.0.1",
          ca: secure.caPem,
          servername: "localhost",
          ALPNProtocols: ["http/1.1"],
        })
      : net.connect(server.port, "127.0.0.1");
    socket.once(secure ? "secureConnect" : "connect", () => socket.write(bytes));
    let got = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      got += chunk;
    });
    socket.on("error", () => {});
    socket.once("close", () => resolve(got));
  });
}

describe("Node's HTTP/1.1 timers run on every connection", () => {
  it.each<[string, string, boolean]>([
    [
      "a partial request head on the cleartext port",
      "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1",
      false,
    ],
    [
      "a request body that never ends (requestTimeout)",
      "POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a part",
      false,
    ],
    ["a partial request head over TLS", "GET / HTTP/1.1\r\nHost: x\r\n", true],
  ])("%s gets 408 and is closed, while others are served", async (_, bytes, secure) => {
    const tlsFiles = secure ? certs : undefined;
    const { server } = await recordingServer(tlsFiles);
    try {
      const slow = untilClosed(server, bytes, tlsFiles);
      // Served while the slow client holds its connection, and after.
      expect(await http1Get(server, tlsFiles)).toBe(200);
      expect(await slow).toMatch(/^HTTP\/1\.1 408 /);
      expect(await http1Get(server, tlsFiles)).toBe(200);
    } finally {
      await server.close();
    }
  });

  it("a connection that sends nothing, or only part of the HTTP/2 preface, is dropped", async () => {
    const { server } = await recordingServer();
    try {
      const silent = untilClosed(server, "");
      const partial = untilClosed(server, "PRI * HTTP/2");
      expect(await http1Get(server)).toBe(200);
      expect(await silent).toBe("");
      expect(await partial).toBe("");
    } finally {
      await server.close();
    }
  });
});

describe("HTTP/2 client connections", () => {
  it("are offered maxStreamsPerConnection and closed once idle, but not while a stream is open", async () => {
    const { server } = await recordingServer();
    const idle = http2.connect(`http://127.0.0.1:${server.port}`);
    const busy = http2.connect(`http://127.0.0.1:${server.port}`);
    try {
      const settings = await new Promise<http2.Settings>((resolve) =>
        idle.once("remoteSettings", resolve),
      );
      expect(settings.maxConcurrentStreams).toBe(testLimits.maxStreamsPerConnection);
      const held = busy.request({ ":path": "/hold" });
      held.on("error", () => {});
      // The idle one gets GOAWAY and closes; by then the busy one has been
      // idle-free as long, and is still open.
      await new Promise<void>((resolve) => idle.once("close", resolve));
      expect(busy.closed || busy.destroyed).toBe(false);
      // After its stream ends, it too is closed.
      held.close();
      await new Promise<void>((resolve) => busy.once("close", resolve));
    } finally {
      idle.destroy();
      busy.destroy();
      await server.close();
    }
  });
});
