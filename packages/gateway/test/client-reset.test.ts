import { describe, expect, it } from "vitest";
import {
  Flag,
  FrameType,
  frame,
  grpcMessage,
  grpcRequestHead,
  RawH2Connection,
  rstStream,
} from "../../../test/hostile/h2-wire.js";
import { clientFor } from "./clients.js";
import { eventually } from "./fake-flame.js";
import { gatewayToFakeFlame } from "./gateway-fixture.js";

const env = gatewayToFakeFlame();

describe("a client that resets calls as it sends them (rapid reset)", () => {
  it("never has them opened upstream, and others are served", async () => {
    const attacker = new RawH2Connection(env.gateway.port);
    await attacker.ready();
    const streamsBefore = env.flame.http2Streams;
    try {
      // Each call complete (HEADERS, its message with END_STREAM) and reset
      // right after, all in one write: the gateway reads the reset with the request.
      const frames: Buffer[] = [];
      for (let i = 0; i < 50; i++) {
        for (const method of ["ListApplication", "ListTask"]) {
          const id = attacker.streamId();
          frames.push(
            frame(
              FrameType.headers,
              Flag.endHeaders,
              id,
              grpcRequestHead(env.gateway.port, method),
            ),
            frame(FrameType.data, Flag.endStream, id, grpcMessage(new Uint8Array(0))),
            rstStream(id),
          );
        }
      }
      expect(await attacker.send(Buffer.concat(frames))).toBe(true);
      // A normal call after them goes through.
      const apps = await clientFor("grpc", env.gateway.url).listApplication({});
      expect(apps.applications.length).toBe(3);
      await eventually(() => env.gateway.stats().upstreamStreams === 0, "calls to end");
      // Only the normal call reached the upstream.
      expect(env.flame.http2Streams - streamsBefore).toBe(1);
      expect(attacker.goaways).toEqual([]);
    } finally {
      attacker.destroy();
    }
  });
});
