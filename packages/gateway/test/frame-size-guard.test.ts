import { describe, expect, it } from "vitest";
import { FrameSizeGuard } from "../src/frame-size-guard.js";

function frame(size: number, flags = 0): Buffer {
  const out = Buffer.alloc(5 + size, 0xab);
  out[0] = flags;
  out.writeUInt32BE(size, 1);
  return out;
}

/** Feeds `body` to a guard in pieces split at `cuts`; returns what it let through. */
function feed(guard: FrameSizeGuard, body: Buffer, cuts: number[]): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts, body.length]) {
    out.push(guard.accept(body.subarray(at, cut)));
    at = cut;
  }
  out.push(guard.flush());
  return Buffer.concat(out);
}

describe("FrameSizeGuard", () => {
  it("passes frames within the limit through unchanged, however they are split", () => {
    const body = Buffer.concat([frame(10), frame(0), frame(100), frame(3)]);
    for (const cuts of [[], [1], [4, 5, 6], [12, 13, 14, 15, 16], [2, 17, 118, 119]]) {
      const guard = new FrameSizeGuard(100, [0]);
      expect(feed(guard, body, cuts)).toEqual(body);
      expect(guard.violation).toBeUndefined();
      expect(guard.frames).toBe(4);
    }
  });

  it("refuses a frame over the limit and forwards only the frames before it", () => {
    const ok = frame(10);
    const body = Buffer.concat([ok, frame(101), frame(1)]);
    for (const cuts of [[], [15], [16], [17, 18], [3, 16, 19]]) {
      const guard = new FrameSizeGuard(100, [0]);
      const passed = feed(guard, body, cuts);
      expect(guard.violation).toMatch(/message size 101 is larger than .* 100 bytes/);
      expect(passed).toEqual(ok);
    }
  });

  it("refuses flags the direction does not allow", () => {
    const guard = new FrameSizeGuard(100, [0]);
    expect(guard.accept(frame(1, 0x80)).length).toBe(0);
    expect(guard.violation).toMatch(/protocol error/);
    expect(guard.accept(frame(1)).length).toBe(0);
  });

  it("hands back a truncated header at the end, as it came", () => {
    const guard = new FrameSizeGuard(100, [0]);
    expect(guard.accept(Buffer.from([0, 0])).length).toBe(0);
    expect(guard.flush()).toEqual(Buffer.from([0, 0]));
  });
});
