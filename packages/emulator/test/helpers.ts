import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Frontend, type Task, TaskState } from "@flame-ts/core/gen";
import { afterAll, beforeAll, beforeEach, expect } from "vitest";
import {
  type Emulator,
  type EmulatorOptions,
  type EmulatorStorage,
  startEmulator,
} from "../src/index.js";

export type FrontendClient = Client<typeof Frontend>;

export interface Harness {
  emulator: Emulator;
  client: FrontendClient;
}

/** An emulator and a raw gRPC (HTTP/2) client for it. */
export const startHarness = async (options: EmulatorOptions = {}): Promise<Harness> => {
  const emulator = await startEmulator(options);
  const client = createClient(Frontend, createGrpcTransport({ baseUrl: emulator.url }));
  return { emulator, client };
};

/**
 * One harness for the tests of a describe block: started before them, reset
 * (then `prepare`d) before each, closed after them all.
 */
export const useHarness = (
  options: EmulatorOptions = {},
  prepare?: (h: Harness) => unknown,
): Harness => {
  const h = {} as Harness;
  beforeAll(async () => {
    Object.assign(h, await startHarness(options));
  });
  afterAll(() => h.emulator?.close());
  beforeEach(async () => {
    h.emulator.reset();
    await prepare?.(h);
  });
  return h;
};

/** A time as the engine stores it, taken after `before`: whole seconds on sqlite and fs. */
export const expectStamp = (storage: EmulatorStorage, time: bigint | undefined, before: bigint) => {
  expect(time).toBeDefined();
  const t = time as bigint;
  expect(t <= BigInt(Date.now())).toBe(true);
  if (storage === "none") {
    expect(t >= before).toBe(true);
  } else {
    expect(t % 1000n).toBe(0n);
    expect(t >= before - (before % 1000n)).toBe(true);
  }
};

/** Asserts that `call` fails with `code` and a message containing `message`. */
export const expectCode = async (call: Promise<unknown>, code: Code, message?: string) => {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected ${Code[code]}`).toBeInstanceOf(ConnectError);
  const connectError = error as ConnectError;
  expect(Code[connectError.code]).toBe(Code[code]);
  if (message !== undefined) expect(connectError.rawMessage).toContain(message);
  return connectError;
};

/** Polls until `check` returns a value other than undefined/false. */
export const waitFor = async <T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  what = "condition",
  timeoutMs = 10_000,
): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

const TERMINAL = [TaskState.Succeed, TaskState.Failed, TaskState.Cancelled];

/** Polls GetTask until the task is terminal. */
export const waitForTask = (client: FrontendClient, sessionId: string, taskId: string) =>
  waitFor(async () => {
    const task = await client.getTask({ sessionId, taskId });
    return TERMINAL.includes(task.status?.state ?? TaskState.Pending) ? task : undefined;
  }, `task ${sessionId}/${taskId}`);

/** Collects a server stream into an array. */
export const collect = async <T>(stream: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
};

export const text = (bytes: Uint8Array | undefined) =>
  bytes === undefined ? undefined : new TextDecoder().decode(bytes);
export const bytes = (value: string) => new TextEncoder().encode(value);

export const stateOf = (task: Task) => task.status?.state;

/** A promise with its resolver, for handlers the test releases by hand. */
export const gate = () => {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
};
