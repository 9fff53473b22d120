// The gateway's listener hands accepted sockets to Node's HTTP/1.1 and h2c
// servers itself, so it must switch Nagle's algorithm off the way
// http.createServer would: otherwise gRPC-Web's trailer frame, a second
// small write, waits for the browser's delayed ACK (measured: p50 7 ms and
// p90 45 ms per GetTask through the gateway, against 1 ms direct).
import * as http from "node:http";
import * as http2 from "node:http2";
import type { Socket } from "node:net";
import * as net from "node:net";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ListeningServer, listen } from "../src/server.js";
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

/** A server whose listener answers 200 and records the socket of each request. */
async function recordingServer(tlsFiles?: TestCertificates) {
  const sockets: Socket[] = [];
  const server = await listen(
    (req, res) => {
      sockets.push(tcpSocketOf(req));
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
    },
    {
      port: 0,
      host: "127.0.0.1",
      tls: tlsFiles && { cert: tlsFiles.cert, key: tlsFiles.key },
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
