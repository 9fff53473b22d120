// Hostile request contents: deadlines at gRPC's maximum, request trailers
// that carry credentials and pseudo-headers, and frames left half-sent on
// many connections at once.
import * as http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  Frontend,
  ListApplicationRequestSchema,
  TaskSchema,
  TaskState,
  WatchTaskRequestSchema,
} from "@flame-ts/core/gen";
import { describe, expect, it } from "vitest";
import {
  Flag,
  FrameType,
  frame,
  grpcMessage,
  grpcRequestHead,
  headerBlock,
  RawH2Connection,
} from "./h2-wire.js";
import { expectHeld } from "./held.js";
import { rawGrpcCall } from "./raw-grpc-call.js";
import type { Target } from "./target.js";

const protocolError = 0x1;
const grpcOk = 0;
const grpcUnauthenticated = 16;

/** Registers these attacks on `target` (the {@link Target} called `name`). */
export function requestAttacks(name: Target["name"], target: () => Target): void {
  describe("hostile requests", () => {
    it("keeps calls whose grpc-timeout is gRPC's longest (99999999H) until they end", async () => {
      const client = createClient(Frontend, createGrpcTransport({ baseUrl: target().server.url }));
      const call = { headers: target().callHeaders };
      const sessionId = `deadline-${process.pid}`;
      await client.createSession({ sessionId, session: { application: "flmping" } }, call);
      // A task that runs for a second: long enough for a 1 ms deadline to show.
      const task = await client.createTask(
        { task: { sessionId, input: new TextEncoder().encode('{"duration":1000}') } },
        call,
      );
      const request = toBinary(
        WatchTaskRequestSchema,
        create(WatchTaskRequestSchema, { sessionId, taskId: task.metadata?.id ?? "" }),
      );
      const session = http2.connect(target().server.url);
      session.on("error", () => {});
      let watches: Promise<Awaited<ReturnType<typeof rawGrpcCall>>[]> = Promise.resolve([]);
      try {
        await expectHeld(
          target(),
          async () => {
            watches = Promise.all(
              Array.from({ length: 20 }, () =>
                rawGrpcCall(session, "WatchTask", request, {
                  headers: { ...target().callHeaders, "grpc-timeout": "99999999H" },
                }),
              ),
            );
            return async () => {
              await watches;
            };
          },
          100,
        );
        for (const watch of await watches) {
          expect(watch.status).toBe(grpcOk);
          const last = fromBinary(TaskSchema, watch.messages.at(-1) ?? new Uint8Array());
          expect(last.status?.state).toBe(TaskState.Succeed);
        }
      } finally {
        session.close();
      }
    });

    it("does not take request trailers as headers: no credentials, no pseudo-headers", async () => {
      const listApplication = toBinary(
        ListApplicationRequestSchema,
        create(ListApplicationRequestSchema, {}),
      );
      const attacker = new RawH2Connection(target().server.port);
      let session: http2.ClientHttp2Session | undefined;
      try {
        await expectHeld(
          target(),
          async () => {
            // Pseudo-headers and a credential in the trailers of 200 calls:
            // a malformed request, which Node resets (PROTOCOL_ERROR).
            await attacker.ready();
            const frames: Buffer[] = [];
            for (let i = 0; i < 200; i++) {
              const id = attacker.streamId();
              frames.push(
                frame(
                  FrameType.headers,
                  Flag.endHeaders,
                  id,
                  grpcRequestHead(target().server.port, "ListApplication"),
                ),
                frame(FrameType.data, 0, id, grpcMessage(listApplication)),
                frame(
                  FrameType.headers,
                  Flag.endHeaders | Flag.endStream,
                  id,
                  headerBlock([
                    [":path", "/flame.v1.Frontend/DeleteSession"],
                    ["authorization", `Bearer ${target().callHeaders.authorization ?? "x"}`],
                  ]),
                ),
              );
            }
            await attacker.send(Buffer.concat(frames));
            return () => {};
          },
          100,
        );
        await attacker.ready();
        expect([...attacker.resets.values()]).toContain(protocolError);
        // A well-formed call whose only credential is in its trailers.
        session = http2.connect(target().server.url);
        session.on("error", () => {});
        const token = target().callHeaders.authorization;
        const call = await rawGrpcCall(session, "ListApplication", listApplication, {
          trailers: token === undefined ? { "x-trailer": "ignored" } : { authorization: token },
        });
        expect(call.status).toBe(name === "gateway" ? grpcUnauthenticated : grpcOk);
      } finally {
        attacker.destroy();
        session?.close();
      }
    });

    it("holds against half-sent frames on many connections", async () => {
      const attackers: RawH2Connection[] = [];
      await expectHeld(
        target(),
        async () => {
          const block = grpcRequestHead(target().server.port, "CreateTask", target().callHeaders);
          for (let c = 0; c < 250; c++) {
            const attacker = new RawH2Connection(target().server.port);
            attackers.push(attacker);
            const id = attacker.streamId();
            // 200 connections stop 384 bytes short of a 16 KiB DATA frame;
            // 50 announce a 1 MiB frame (past the largest the server allows)
            // and send 256 KiB of it.
            const announced = c < 200 ? 16_384 : 1 << 20;
            const sent = c < 200 ? 16_000 : 256 * 1024;
            const head = frame(FrameType.data, 0, id, Buffer.alloc(0));
            head.writeUIntBE(announced, 0, 3);
            attacker.write(
              Buffer.concat([
                frame(FrameType.headers, Flag.endHeaders, id, block),
                head,
                Buffer.alloc(sent, 7),
              ]),
            );
          }
          await Promise.all(attackers.map((attacker) => attacker.ready()));
          return () => {
            for (const attacker of attackers) attacker.destroy();
          };
        },
        150,
      );
      // Frames larger than the server allows end their connection at once.
      for (const attacker of attackers.slice(200)) {
        expect(attacker.goaways.length > 0 || attacker.socket.destroyed).toBe(true);
      }
    });
  });
}
