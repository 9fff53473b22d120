import type { Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Connection, type ConnectionOptions } from "@flame-ts/core";
import { type Emulator, type EmulatorOptions, startEmulator } from "@flame-ts/emulator";
import { afterAll, beforeAll, expect } from "vitest";

export interface Harness {
  emulator: Emulator;
  connection: Connection;
  /** Requests the client sent, per method (retries included). */
  sent: Record<string, number>;
  /** A further connection to the same emulator with other options. */
  connect(options?: ConnectionOptions): Connection;
  close(): Promise<void>;
}

/** An emulator and a Connection to it over real HTTP/2 (gRPC) sockets. */
export async function startHarness(
  options: EmulatorOptions = {},
  connectionOptions: ConnectionOptions = {},
): Promise<Harness> {
  const emulator = await startEmulator({ port: 0, host: "127.0.0.1", ...options });
  const sent: Record<string, number> = {};
  const count: Interceptor = (next) => (req) => {
    sent[req.method.name] = (sent[req.method.name] ?? 0) + 1;
    return next(req);
  };
  const connections: Connection[] = [];
  const connect = (o: ConnectionOptions = {}) => {
    const c = new Connection(
      createGrpcTransport({ baseUrl: emulator.url, interceptors: [count] }),
      o,
    );
    connections.push(c);
    return c;
  };
  const connection = connect(connectionOptions);
  return {
    emulator,
    connection,
    sent,
    connect,
    async close() {
      for (const c of connections) await c.close();
      await emulator.close();
    },
  };
}

/**
 * A harness started before the enclosing block's tests and closed after
 * them: one line where each block would otherwise declare, start and close
 * its own. Its members may be read once the block's tests run.
 */
export function useHarness(
  options: EmulatorOptions = {},
  connectionOptions: ConnectionOptions = {},
): Harness {
  let started: Harness | undefined;
  beforeAll(async () => {
    started = await startHarness(options, connectionOptions);
  });
  afterAll(() => started?.close());
  const get = (): Harness => {
    if (started === undefined) throw new Error("the harness is read before its beforeAll ran");
    return started;
  };
  return {
    get emulator() {
      return get().emulator;
    },
    get connection() {
      return get().connection;
    },
    get sent() {
      return get().sent;
    },
    connect: (o) => get().connect(o),
    close: () => get().close(),
  };
}

export { gate, rejection, waitFor } from "../support/async.js";

/**
 * Serves `app` with tasks that run until let go: each task's opener is in
 * the returned map by task id (and in `openers`, when given, so that a
 * test can let every task go at the end). A task's output is `out-<id>`.
 */
export function serveHeld(
  emulator: Emulator,
  app: string,
  openers?: (() => void)[],
): Map<string, () => void> {
  const gates = new Map<string, () => void>();
  emulator.serve(
    app,
    ({ taskId }) =>
      new Promise<string>((resolve) => {
        const open = () => resolve(`out-${taskId}`);
        gates.set(taskId, open);
        openers?.push(open);
      }),
  );
  return gates;
}

/** Flame's storage engines, each answering in its own codes and words. */
export type Engine = NonNullable<EmulatorOptions["storage"]>;

/**
 * The engines the client's socket tests run on (describe.each): sqlite is
 * Flame's built-in default, fs what flmadm, the Helm chart and Flame's CI
 * deploy, none memory only.
 */
export const engines: readonly Engine[] = ["sqlite", "fs", "none"];

let counter = 0;
/** A unique name for an application or session in this test file. */
export const unique = (prefix: string) => `${prefix}-${process.pid}-${++counter}`;

/**
 * Checks a list call's order against the server's: the client's (from
 * `listed`) is oldest first, the same creation time by id, and the same on
 * every call, while the server's own (from `raw`, ids) changes between
 * calls, as Flame's does. Returns the client's ids.
 */
export async function expectStableOrder<T extends { creationTime: Date }>(
  listed: () => Promise<T[]>,
  raw: () => Promise<string[]>,
  id: (item: T) => string,
): Promise<string[]> {
  const items = await listed();
  for (let i = 1; i < items.length; i++) {
    const [a, b] = [items[i - 1] as T, items[i] as T];
    const ta = a.creationTime.getTime();
    const tb = b.creationTime.getTime();
    expect(ta < tb || (ta === tb && id(a) < id(b))).toBe(true);
  }
  const ids = items.map(id);
  const rawOrders = new Set<string>();
  for (let i = 0; i < 5; i++) {
    rawOrders.add((await raw()).join());
    expect((await listed()).map(id)).toEqual(ids);
  }
  expect(rawOrders.size).toBeGreaterThan(1);
  return ids;
}
