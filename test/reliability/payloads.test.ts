// Task payloads from 0 bytes to 16 MiB go through CreateTask, the emulator
// (flmexec echoes its input) and back intact; past the configured message
// limit the call fails with a clear error, and nothing is sent. Real Flame
// refuses requests over 4 MiB (the client checks that before sending, see
// test/client/tasks.test.ts); here both ends are told to take more.
import { FlameError, TaskState } from "@flame-ts/core";
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import { type Connection, connect } from "@flame-ts/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rejection } from "./helpers.js";

const KiB = 1024;
const MiB = 1024 * KiB;

let emulator: Emulator;
let small: Emulator;
const connections: Connection[] = [];

async function open(url: string, options: Parameters<typeof connect>[1] = {}) {
  const c = await connect(url, options);
  connections.push(c);
  return c;
}

/** Bytes that differ along their length, so a shifted or cut copy does not compare equal. */
function payload(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = seed * 2654435761;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

const same = (a: Uint8Array | undefined, b: Uint8Array) =>
  a !== undefined && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

beforeAll(async () => {
  emulator = await startEmulator({ port: 0, maxRequestBytes: 64 * MiB });
  small = await startEmulator({ port: 0, maxMessageBytes: MiB });
});
afterAll(async () => {
  for (const c of connections) await c.close();
  await emulator?.close();
  await small?.close();
});

describe("payloads round-trip intact", () => {
  const sizes = [0, 1, 1023, 64 * KiB, MiB + 7, 4 * MiB, 16 * MiB];
  it.each(sizes)("%i bytes", async (size) => {
    const c = await open(emulator.url, { maxRequestBytes: 64 * MiB });
    const s = await c.createSession({ application: "flmexec" });
    const input = payload(size, size + 1);
    const result = await s.run(input);
    expect(result.state).toBe(TaskState.Succeed);
    expect(result.output?.length ?? 0).toBe(size);
    if (size > 0) expect(same(result.output, input)).toBe(true);
    const task = await s.getTask(result.taskId);
    expect(task.input?.length ?? 0).toBe(size);
    if (size > 0) expect(same(task.input, input)).toBe(true);
    await c.close();
  });
});

describe("past the configured limit", () => {
  it("the client refuses to send it, says why, and the server sees nothing", async () => {
    const c = await open(emulator.url, { maxMessageBytes: MiB });
    const s = await c.createSession({ application: "flmexec" });
    const before = emulator.stats().calls.CreateTask ?? 0;
    const err = (await rejection(s.createTask(payload(MiB + 1, 3)))) as FlameError;
    expect(FlameError.is(err)).toBe(true);
    expect(err.method).toBe("CreateTask");
    expect(err.message).toMatch(/message size \d+ is larger than configured writeMaxBytes 1048576/);
    expect(emulator.stats().calls.CreateTask ?? 0).toBe(before);
    // Under the limit the same connection works (a task carries its input and output).
    expect((await s.run(payload(MiB / 4, 4))).state).toBe(TaskState.Succeed);
  });

  it("the client refuses an answer over its limit, with the limit in the message", async () => {
    const big = await open(emulator.url, { maxRequestBytes: 64 * MiB });
    const s = await big.createSession({ application: "flmexec" });
    const done = await s.run(payload(2 * MiB, 5)); // the task carries 2 MiB in and 2 MiB out
    const c = await open(emulator.url, { maxMessageBytes: MiB });
    const same = await c.openSession(s.id);
    const err = (await rejection(same.getTask(done.taskId))) as FlameError;
    expect(err.method).toBe("GetTask");
    expect(err.message).toMatch(/larger than configured readMaxBytes 1048576/);
  });

  it("a server with a lower limit refuses it with a typed error, and no task is made", async () => {
    const c = await open(small.url);
    const s = await c.createSession({ application: "flmexec" });
    const err = (await rejection(s.createTask(payload(2 * MiB, 6)))) as FlameError;
    expect(FlameError.is(err)).toBe(true);
    expect(err.method).toBe("CreateTask");
    expect(err.code).toBe(8); // ResourceExhausted
    expect(await s.listTasks()).toEqual([]);
  });
});
