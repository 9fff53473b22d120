import type { Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Connection, type ConnectionOptions } from "@flame-ts/core";
import { type Emulator, type EmulatorOptions, startEmulator } from "@flame-ts/emulator";

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

/** Polls until `check` gives something other than undefined/false (bounded, not a timing assertion). */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  what = "condition",
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A promise with its resolve function outside: a gate a task handler waits on. */
export function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Captures the rejection of `promise` (fails if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${String(value)}`);
    },
    (err: unknown) => err,
  );
}

let counter = 0;
/** A unique name for an application or session in this test file. */
export const unique = (prefix: string) => `${prefix}-${process.pid}-${++counter}`;
