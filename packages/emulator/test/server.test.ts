// The emulator's HTTP/1.1 server accepts every cleartext socket and hands
// those that open with the HTTP/2 preface to its h2c server; Nagle's
// algorithm must be off on all of them. With Nagle on, a gRPC-Web reply
// written in two pieces waits for the browser's delayed ACK.
import * as http from "node:http";
import type * as net from "node:net";
import { describe, expect, it } from "vitest";
import { connectionLimitDefaults } from "../src/connection-limits.js";
import { EmulatorServer } from "../src/server.js";

/** The flag Node keeps on a TCP socket for setNoDelay (internal, hence the check). */
function nagleOff(socket: net.Socket): boolean {
  const flag = Object.getOwnPropertySymbols(socket).find((s) => s.description === "kSetNoDelay");
  if (flag === undefined) throw new Error("this Node keeps no kSetNoDelay flag on sockets");
  return (socket as unknown as Record<symbol, unknown>)[flag] === true;
}

describe("the emulator's listener", () => {
  it("turns Nagle off on accepted HTTP/1.1 connections", async () => {
    const server = new EmulatorServer({
      routes: () => {},
      interceptors: [],
      protocols: { grpc: true, grpcWeb: true, connect: true },
      corsOrigins: "localhost",
      maxMessageBytes: 1024,
      tls: undefined,
      limits: connectionLimitDefaults,
    });
    const accepted: net.Socket[] = [];
    // The listening server is private: reach it to see each accepted TCP socket.
    (server as unknown as { server: net.Server }).server.on("connection", (socket) =>
      accepted.push(socket),
    );
    const port = await server.listen(0, "127.0.0.1");
    try {
      const status = await new Promise<number>((resolve, reject) => {
        http
          .get(
            { host: "127.0.0.1", port, path: "/flame.v1.Frontend/Missing", agent: false },
            (res) => {
              res.resume();
              res.once("end", () => resolve(res.statusCode ?? 0));
            },
          )
          .once("error", reject);
      });
      // An unknown path over HTTP/1.1: the HTTP/1.1 server answered it.
      expect(status).toBe(404);
      expect(accepted).toHaveLength(1);
      expect(nagleOff(accepted[0] as net.Socket)).toBe(true);
    } finally {
      await server.close();
    }
  });
});
