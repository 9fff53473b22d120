// Hostile clients that hold connections rather than send much: a request
// head trickled byte by byte (slowloris), connections that never say
// anything, and clients that send request after request but never read an
// answer. Node's timers and backpressure must apply to every connection,
// whichever protocol its first bytes choose.
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { describe, expect, it } from "vitest";
import { waitFor } from "../support/async.js";
import {
  Flag,
  FrameType,
  frame,
  grpcMessage,
  grpcRequestHead,
  RawH2Connection,
  Setting,
  settings,
} from "./h2-wire.js";
import { expectHeld } from "./held.js";
import type { Target } from "./target.js";

/**
 * Opens `count` TCP connections to `port` and resolves once all are
 * connected. Whatever the server sends is read and dropped (so that its
 * closing is seen) unless `read` is false.
 */
async function connectMany(port: number, count: number, read = true): Promise<net.Socket[]> {
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const socket = net.connect(port, "127.0.0.1", () => resolve(socket));
          socket.once("error", reject);
          if (read) socket.resume();
        }),
    ),
  );
}

/** Resolves once every socket is closed (by the server), failing after `limitMs`. */
function allClosed(sockets: net.Socket[], what: string, limitMs = 20_000): Promise<unknown> {
  return waitFor(() => sockets.every((s) => s.destroyed || s.closed), what, limitMs);
}

/** Registers these attacks on `target` (the {@link Target} called `name`). */
export function slowClientAttacks(name: Target["name"], target: () => Target): void {
  describe("slow and silent clients", () => {
    it("closes HTTP/1.1 connections whose request head trickles in (slowloris)", async () => {
      const sockets: net.Socket[] = [];
      const timers: NodeJS.Timeout[] = [];
      await expectHeld(
        target(),
        async () => {
          sockets.push(...(await connectMany(target().server.port, 100)));
          for (const socket of sockets) {
            socket.on("error", () => {});
            socket.write("POST /flame.v1.Frontend/GetTask HTTP/1.1\r\nHost: target\r\n");
            // One more header byte every 100 ms, never the blank line that ends the head.
            timers.push(
              setInterval(() => {
                if (!socket.destroyed) socket.write("x");
              }, 100),
            );
          }
          return () => {};
        },
        100,
      );
      try {
        await allClosed(sockets, "the server closing every slowloris connection");
      } finally {
        for (const timer of timers) clearInterval(timer);
        for (const socket of sockets) socket.destroy();
      }
    });

    it("closes connections that send nothing, or only part of the HTTP/2 preface", async () => {
      const sockets: net.Socket[] = [];
      await expectHeld(
        target(),
        async () => {
          sockets.push(...(await connectMany(target().server.port, 150)));
          sockets.forEach((socket, i) => {
            socket.on("error", () => {});
            if (i % 3 === 1) socket.write("PRI * HTTP/2.0\r\n");
            if (i % 3 === 2) socket.write("GET / HTTP/1.1\r\n");
          });
          return () => {};
        },
        100,
      );
      try {
        await allClosed(sockets, "the server closing every silent connection");
      } finally {
        for (const socket of sockets) socket.destroy();
      }
    });

    it("stops reading from clients that send requests but never read the answers", async () => {
      const attackers: net.Socket[] = [];
      const h2Attackers: RawH2Connection[] = [];
      let stalled = 0;
      await expectHeld(
        target(),
        async () => {
          // HTTP/1.1: CORS preflights, answered by the server itself,
          // pipelined 1,000 at a time on 2 connections that never read.
          const preflight = Buffer.from(
            "OPTIONS /flame.v1.Frontend/ListApplication HTTP/1.1\r\nHost: target\r\n" +
              "Origin: http://allowed.example\r\nAccess-Control-Request-Method: POST\r\n\r\n",
          );
          const burst = Buffer.concat(Array.from({ length: 1_000 }, () => preflight));
          attackers.push(...(await connectMany(target().server.port, 2, false)));
          for (const socket of attackers) socket.on("error", () => {});
          // Write until the server stops reading (the socket's buffer stays
          // full) or 20 MB per connection went out, whichever comes first.
          await Promise.all(
            attackers.map(async (socket) => {
              for (let i = 0; i < 150 && !socket.destroyed; i++) {
                if (!socket.write(burst)) {
                  const drained = await Promise.race([
                    new Promise<boolean>((resolve) => socket.once("drain", () => resolve(true))),
                    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 300)),
                  ]);
                  if (!drained) {
                    stalled++;
                    return;
                  }
                }
              }
            }),
          );
          // HTTP/2: a client that grants the server no flow-control window,
          // so no answer can be sent, and keeps asking.
          for (let c = 0; c < 1; c++) {
            const attacker = new RawH2Connection(target().server.port, {
              windowUpdates: false,
              clientSettings: settings([[Setting.initialWindowSize, 0]]),
            });
            h2Attackers.push(attacker);
            await attacker.ready();
            const block = grpcRequestHead(target().server.port, "ListApplication");
            const requests: Buffer[] = [];
            for (let i = 0; i < 300; i++) {
              const id = attacker.streamId();
              requests.push(
                frame(FrameType.headers, Flag.endHeaders, id, block),
                frame(FrameType.data, Flag.endStream, id, grpcMessage(new Uint8Array(0))),
              );
            }
            attacker.write(Buffer.concat(requests));
          }
          return () => {
            for (const socket of attackers) socket.destroy();
            for (const attacker of h2Attackers) attacker.destroy();
          };
        },
        150,
      );
      // The server stopped reading from every connection long before taking
      // the 20 MB each wanted to send.
      expect(stalled).toBe(2);
    });

    if (name === "gateway") {
      it("keeps its refusal log small when refused calls carry huge Origin values", async () => {
        const logBefore = target().server.outputBytes;
        let sentBytes = 0;
        await expectHeld(
          target(),
          async () => {
            // 200 calls from an origin that is not allowed, without a token,
            // each with a 15 KB Origin (just under Node's 16 KiB head limit),
            // over HTTP/1.1 keep-alive and over HTTP/2.
            const origin = `http://${"o".repeat(15_000)}.example`;
            const http1 = new http.Agent({ keepAlive: true, maxSockets: 8 });
            const h2 = http2.connect(target().server.url);
            h2.on("error", () => {});
            const http1Call = () =>
              new Promise<void>((resolve) => {
                const req = http.request(
                  {
                    host: "127.0.0.1",
                    port: target().server.port,
                    method: "POST",
                    path: "/flame.v1.Frontend/ListApplication",
                    agent: http1,
                    headers: { origin, "content-type": "application/grpc-web+proto" },
                  },
                  (res) => {
                    res.resume();
                    res.once("end", resolve);
                  },
                );
                req.once("error", () => resolve());
                req.end(Buffer.alloc(5));
              });
            const h2Call = () =>
              new Promise<void>((resolve) => {
                const stream = h2.request({
                  ":method": "POST",
                  ":path": "/flame.v1.Frontend/ListApplication",
                  origin,
                  "content-type": "application/grpc+proto",
                });
                stream.on("error", () => resolve());
                stream.resume();
                stream.once("close", () => resolve());
                stream.end(Buffer.alloc(5));
              });
            for (let round = 0; round < 10; round++) {
              await Promise.all([
                ...Array.from({ length: 10 }, http1Call),
                ...Array.from({ length: 10 }, h2Call),
              ]);
              sentBytes += 20 * origin.length;
            }
            http1.destroy();
            h2.close();
            return () => {};
          },
          100,
        );
        const logged = target().server.outputBytes - logBefore;
        console.log(`gateway: ${sentBytes} bytes of Origin sent, ${logged} bytes logged`);
        // Refusals are logged, and 3 MB of Origin values make a log of a
        // few kilobytes, not megabytes.
        expect(logged).toBeGreaterThan(0);
        expect(logged).toBeLessThan(256 * 1024);
      });
    }
  });
}
