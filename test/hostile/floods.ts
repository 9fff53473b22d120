// Hostile HTTP/2 clients that try to make the server hold memory: streams
// that never send a body, header blocks that never end, and header blocks
// that decode to far more than they weigh. Each runs against the emulator
// and against a gateway in front of one, over real sockets, scaled down to
// seconds; the server must survive, keep its memory bounded and serve a
// normal client during and after.
import { describe, expect, it } from "vitest";
import {
  Flag,
  FrameType,
  frame,
  grpcRequestHead,
  indexedField,
  indexedLiteralField,
  RawH2Connection,
} from "./h2-wire.js";
import { expectHeld } from "./held.js";
import type { Target } from "./target.js";

/** Registers these attacks on `target` (the {@link Target} called `name`). */
export function floodAttacks(name: Target["name"], target: () => Target): void {
  describe("HTTP/2 floods", () => {
    it("holds against a flood of streams that send HEADERS and never any DATA", async () => {
      const streams = 10_000;
      const attackers: RawH2Connection[] = [];
      const { growthMiB } = await expectHeld(
        target(),
        async () => {
          const attacker = new RawH2Connection(target().server.port);
          attackers.push(attacker);
          await attacker.ready();
          const block = grpcRequestHead(target().server.port, "CreateTask");
          let batch: Buffer[] = [];
          for (let i = 0; i < streams && !attacker.socket.destroyed; i++) {
            batch.push(frame(FrameType.headers, Flag.endHeaders, attacker.streamId(), block));
            if (batch.length === 256) {
              await attacker.send(Buffer.concat(batch));
              batch = [];
            }
          }
          await attacker.send(Buffer.concat(batch));
          return () => attacker.destroy();
        },
        150,
      );
      const attacker = attackers[0] as RawH2Connection;
      // The server told the client its limit, and refused or cut off the rest.
      const limit = attacker.serverSettings?.get(0x3);
      expect(limit).toBeLessThan(streams);
      expect(attacker.resets.size + attacker.goaways.length).toBeGreaterThan(0);
      console.log(`${name}: ${streams} bodiless streams, peak RSS +${growthMiB.toFixed(1)} MiB`);
    });

    it("holds against a flood of empty CONTINUATION frames", async () => {
      const attackers: RawH2Connection[] = [];
      await expectHeld(
        target(),
        async () => {
          const attacker = new RawH2Connection(target().server.port);
          attackers.push(attacker);
          await attacker.ready();
          const id = attacker.streamId();
          // A header block opened without END_HEADERS, then 200,000 empty
          // continuations (1.8 MB): no header bytes, so no size limit counts them.
          await attacker.send(
            frame(FrameType.headers, 0, id, grpcRequestHead(target().server.port, "GetTask")),
          );
          const empty = frame(FrameType.continuation, 0, id);
          const batch = Buffer.concat(Array.from({ length: 2_000 }, () => empty));
          for (let i = 0; i < 100 && !attacker.socket.destroyed; i++) await attacker.send(batch);
          return () => attacker.destroy();
        },
        100,
      );
    });

    it("holds against a header block that decodes to far more than it weighs (HPACK amplification)", async () => {
      const attackers: RawH2Connection[] = [];
      await expectHeld(
        target(),
        async () => {
          // One 4 KB table entry, then a block of one-byte references to it:
          // 250 KB on the wire would decode to about 1 GB of fields. Sent on
          // four connections, three blocks each.
          const big = indexedLiteralField("x-amplified", "a".repeat(4_000));
          const references = Buffer.alloc(250_000, indexedField(62));
          for (let c = 0; c < 4; c++) {
            const attacker = new RawH2Connection(target().server.port);
            attackers.push(attacker);
            await attacker.ready();
            for (let s = 0; s < 3 && !attacker.socket.destroyed; s++) {
              const block = Buffer.concat([
                grpcRequestHead(target().server.port, "GetTask"),
                big,
                references,
              ]);
              const id = attacker.streamId();
              const pieces: Buffer[] = [];
              for (let at = 0; at < block.length; at += 16_384) {
                const last = at + 16_384 >= block.length;
                const type = at === 0 ? FrameType.headers : FrameType.continuation;
                pieces.push(
                  frame(type, last ? Flag.endHeaders : 0, id, block.subarray(at, at + 16_384)),
                );
              }
              await attacker.send(Buffer.concat(pieces));
            }
          }
          return () => {
            for (const attacker of attackers) attacker.destroy();
          };
        },
        150,
      );
    });
  });
}
