import * as http2 from "node:http2";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FLAME_MAX_REQUEST_BYTES } from "../src/index.js";
import { bytes, expectCode, type Harness, startHarness, text, waitForTask } from "./helpers.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.emulator.close());

/** A CreateTask request's encoded size for an input of `n` bytes in a session named `id`. */
const createTaskSize = (n: number, id: string) => {
  // TaskSpec: session_id (tag, length, id) + input (tag, varint(n), n); the task field wraps it.
  const varint = (v: number) => (v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4);
  const spec = 2 + id.length + 1 + varint(n) + n;
  return 1 + varint(spec) + spec;
};

describe("the 4 MiB request limit (tonic's default, left in force by Flame)", () => {
  it("is 4 MiB", () => {
    expect(FLAME_MAX_REQUEST_BYTES).toBe(4 * 1024 * 1024);
  });

  it("refuses a larger request with OUT_OF_RANGE in tonic's words, and serves the next one", async () => {
    await h.client.createSession({ sessionId: "big", session: { application: "flmexec" } });
    const input = new Uint8Array(FLAME_MAX_REQUEST_BYTES).fill(1);
    const error = await expectCode(
      h.client.createTask({ task: { sessionId: "big", input } }),
      Code.OutOfRange,
    );
    expect(error.rawMessage).toBe(
      `Error, decoded message length too large: found ${createTaskSize(input.length, "big")} bytes, the limit is: 4194304 bytes`,
    );
    // Nothing was created; the same connection goes on.
    expect((await h.client.getSession({ sessionId: "big" })).status?.pending).toBe(0);
    await h.client.createTask({ task: { sessionId: "big", input: bytes("small") } });
    expect(text((await waitForTask(h.client, "big", "1")).spec?.output)).toBe("small");
  });

  it("accepts a request of exactly 4 MiB", async () => {
    await h.client.createSession({ sessionId: "edge", session: { application: "flmexec" } });
    let n = FLAME_MAX_REQUEST_BYTES - 16;
    while (createTaskSize(n + 1, "edge") <= FLAME_MAX_REQUEST_BYTES) n++;
    expect(createTaskSize(n, "edge")).toBe(FLAME_MAX_REQUEST_BYTES);
    const created = await h.client.createTask({
      task: { sessionId: "edge", input: new Uint8Array(n) },
    });
    expect(created.metadata?.id).toBe("1");
  });

  it("applies to session common data and application specs too", async () => {
    const big = new Uint8Array(FLAME_MAX_REQUEST_BYTES + 1);
    await expectCode(
      h.client.createSession({
        sessionId: "cd",
        session: { application: "flmexec", commonData: big },
      }),
      Code.OutOfRange,
      "the limit is: 4194304 bytes",
    );
    await expectCode(
      h.client.registerApplication({
        name: "huge",
        application: { description: "x".repeat(FLAME_MAX_REQUEST_BYTES) },
      }),
      Code.OutOfRange,
    );
    await expectCode(h.client.getSession({ sessionId: "cd" }), Code.NotFound);
  });

  it("a raw gRPC request over the limit gets grpc-status 11 (OUT_OF_RANGE)", async () => {
    const session = http2.connect(h.emulator.url);
    try {
      const size = FLAME_MAX_REQUEST_BYTES + 10;
      // GetSessionRequest { session_id = 1 } with a 4 MiB id, framed by hand.
      const id = Buffer.alloc(size - 5, 0x61);
      const message = Buffer.concat([
        Buffer.from([0x0a, 0x80 | (id.length & 0x7f)]),
        varintRest(id.length),
        id,
      ]);
      const frame = Buffer.alloc(5);
      frame.writeUInt32BE(message.length, 1);
      const stream = session.request({
        ":method": "POST",
        ":path": "/flame.v1.Frontend/GetSession",
        "content-type": "application/grpc",
        te: "trailers",
      });
      stream.end(Buffer.concat([frame, message]));
      const status = await new Promise<string | undefined>((resolve, reject) => {
        let seen: string | undefined;
        stream.on("response", (headers) => {
          seen = headers["grpc-status"] as string | undefined;
        });
        stream.on("trailers", (trailers) => {
          seen = (trailers["grpc-status"] as string | undefined) ?? seen;
        });
        stream.on("end", () => resolve(seen));
        stream.on("error", reject);
        stream.resume();
      });
      expect(status).toBe(String(Code.OutOfRange));
    } finally {
      session.close();
    }
  });
});

/** The varint bytes of `n` after its first (low seven bits) byte. */
function varintRest(n: number): Buffer {
  const out: number[] = [];
  let rest = n >>> 7;
  while (rest >= 128) {
    out.push(0x80 | (rest & 0x7f));
    rest >>>= 7;
  }
  out.push(rest);
  return Buffer.from(out);
}
