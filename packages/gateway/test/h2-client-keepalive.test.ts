// Keep-alive on the gRPC-Web relay's upstream connections: after a silent
// period the connection sends PING, and one whose upstream does not answer
// fails with its streams, instead of waiting for TCP to give up. Short
// intervals here; the gateway uses 30 s and 15 s.
import { afterEach, expect, it } from "vitest";
import type { StreamAbort } from "../src/h2-client-connection.js";
import { H2ClientPool } from "../src/h2-client-pool.js";
import { encodeFrame, FrameType } from "../src/h2-frame.js";
import { encodeHeaderBlock } from "../src/header-block.js";
import { eventually } from "./fake-flame.js";
import { type ScriptedUpstream, startScriptedUpstream } from "./scripted-upstream.js";

/** A PING every 40 ms of silence; an answer is due within `timeoutMs`. */
const keepAlive = (timeoutMs: number) => ({ intervalMs: 40, timeoutMs });
const opened: { pool: H2ClientPool<unknown>; upstream: ScriptedUpstream }[] = [];

afterEach(async () => {
  for (const { pool, upstream } of opened.splice(0)) {
    pool.close();
    await upstream.close();
  }
});

/** A pool on an upstream that leaves requests unanswered, and a stream open on it. */
async function openStream(answerPings: boolean, timeoutMs: number) {
  const upstream = await startScriptedUpstream({
    onFrame(connection, frame) {
      if (answerPings && frame.type === FrameType.ping && !(frame.flags & 0x1)) {
        connection.write(encodeFrame(FrameType.ping, 0x1, 0, frame.payload));
      }
    },
  });
  const pool = new H2ClientPool<unknown>(
    new URL(upstream.url),
    undefined,
    {},
    keepAlive(timeoutMs),
  );
  opened.push({ pool, upstream });
  const connection = await pool.connection();
  const aborts: StreamAbort[] = [];
  const block = encodeHeaderBlock([
    [":method", "POST"],
    [":scheme", "http"],
    [":authority", new URL(upstream.url).host],
    [":path", "/flame.v1.Frontend/WatchTask"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
  ]);
  connection.request(block, false, {
    onHeaders() {},
    onData() {},
    onAbort(reason) {
      aborts.push(reason);
    },
  });
  const pings = () =>
    upstream.connections
      .flatMap((c) => c.frames)
      .filter((f) => f.type === FrameType.ping && !(f.flags & 0x1)).length;
  return { pool, aborts, pings };
}

it("fails a connection whose upstream does not answer PING, and its streams with it", async () => {
  const { pool, aborts, pings } = await openStream(false, 60);
  await eventually(() => aborts.length === 1, "the stream to be failed");
  expect(pings()).toBe(1);
  expect(aborts[0]).toEqual({
    kind: "connection",
    message: "the upstream did not answer a PING within 60 ms",
  });
  await eventually(() => pool.size === 0, "the pool to drop the connection");
});

it("keeps a quiet connection whose upstream answers PING", async () => {
  // A generous deadline: a busy machine must not turn a late answer into a failure.
  const { pool, aborts, pings } = await openStream(true, 5_000);
  await eventually(() => pings() >= 3, "three keep-alive PINGs");
  expect(aborts).toEqual([]);
  expect(pool.size).toBe(1);
});
