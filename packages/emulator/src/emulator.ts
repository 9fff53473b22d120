import * as os from "node:os";
import { resolveConnectionLimits } from "./connection-limits.js";
import type { Emulator, EmulatorOptions } from "./options.js";
import { createEmulatorRoutes } from "./routes.js";
import { EmulatorServer } from "./server.js";

// Room for a task that echoes a 16 MiB input: input and output travel together.
const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

// What Flame reports in NodeInfo: Rust's std::env::consts::{ARCH, OS}.
const RUST_ARCH: Record<string, string> = { x64: "x86_64", arm64: "aarch64", ia32: "x86" };
const RUST_OS: Record<string, string> = { darwin: "macos", win32: "windows" };

const formatUrl = (tls: boolean, host: string, port: number) => {
  // A wildcard bind is reachable on loopback; show an address a client can dial.
  const dialable = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  const shown = dialable.includes(":") ? `[${dialable}]` : dialable;
  return `${tls ? "https" : "http"}://${shown}:${port}`;
};

/** Starts an in-memory Flame session manager; `await emulator.close()` when done. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const host = options.host ?? "127.0.0.1";
  const limits = resolveConnectionLimits(options);
  const hostname = options.hostname ?? os.hostname();
  const core = createEmulatorRoutes({
    hostname,
    pendingDelayMs: options.pendingDelayMs ?? 0,
    runningDelayMs: options.runningDelayMs ?? 0,
    applications: options.applications ?? {},
    maxExecutors: options.maxExecutors ?? 64,
    node: {
      capacity: { cpu: BigInt(os.cpus().length || 1), memory: BigInt(os.totalmem()), gpu: 0 },
      arch: RUST_ARCH[os.arch()] ?? os.arch(),
      os: RUST_OS[os.platform()] ?? os.platform(),
      addresses: [],
    },
    storage: options.storage,
    listSeed: options.listSeed,
    maxSessions: options.maxSessions,
    maxRequestBytes: options.maxRequestBytes,
    defaultResreq: options.defaultResreq,
    failToStart: options.failToStart,
    sessionRetryLimit: options.sessionRetryLimit,
  });
  const server = new EmulatorServer({
    routes: core.routes,
    interceptors: core.interceptors,
    protocols: {
      grpc: options.protocols?.grpc ?? true,
      grpcWeb: options.protocols?.grpcWeb ?? true,
      connect: options.protocols?.connect ?? true,
    },
    corsOrigins: options.corsOrigins ?? "localhost",
    maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    tls: options.tls,
    limits,
  });
  const port = await server.listen(options.port ?? 0, host);
  let closed = false;

  return {
    url: formatUrl(options.tls !== undefined, host, port),
    port,
    serve: core.serve,
    unserve: core.unserve,
    failToStart: core.failToStart,
    allowStart: core.allowStart,
    loseExecutors: core.loseExecutors,
    pause: core.pause,
    resume: core.resume,
    dropStreams: core.dropStreams,
    stats: core.stats,
    reset: core.reset,
    async restart() {
      await server.close();
      await server.listen(port, host);
    },
    async close() {
      if (closed) return;
      closed = true;
      core.stop();
      await server.close();
    },
  };
}
