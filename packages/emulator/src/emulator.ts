import * as os from "node:os";
import type { Interceptor } from "@connectrpc/connect";
import { ExecutorPool, type NodeDescription } from "./executors.js";
import { frontendRoutes } from "./frontend-service.js";
import type { Emulator, EmulatorOptions, EmulatorStats, TaskHandler } from "./options.js";
import { EmulatorServer } from "./server.js";
import { SessionManager } from "./session-manager.js";
import { StreamRegistry } from "./stream-registry.js";

// Room for a task that echoes a 16 MiB input: input and output travel together.
const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

const describeHost = (hostname: string, host: string): NodeDescription => ({
  hostname,
  capacity: {
    cpu: BigInt(os.cpus().length || 1),
    memory: BigInt(os.totalmem()),
    gpu: 0,
  },
  arch: os.arch(),
  os: os.platform(),
  addresses: [
    { type: "Hostname", address: hostname },
    { type: "InternalIP", address: host },
  ],
});

const formatUrl = (tls: boolean, host: string, port: number) => {
  // A wildcard bind is reachable on loopback; show an address a client can dial.
  const dialable = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  const shown = dialable.includes(":") ? `[${dialable}]` : dialable;
  return `${tls ? "https" : "http"}://${shown}:${port}`;
};

/** Starts an in-memory Flame session manager; `await emulator.close()` when done. */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const host = options.host ?? "127.0.0.1";
  const hostname = options.hostname ?? os.hostname();
  const executors = new ExecutorPool(describeHost(hostname, host), options.maxExecutors ?? 64);
  const manager = new SessionManager(
    {
      hostname,
      pendingDelayMs: options.pendingDelayMs ?? 0,
      runningDelayMs: options.runningDelayMs ?? 0,
      applications: options.applications ?? {},
    },
    executors,
  );
  const streams = new StreamRegistry();
  let calls: Record<string, number> = {};
  const countCalls: Interceptor = (next) => (req) => {
    calls[req.method.name] = (calls[req.method.name] ?? 0) + 1;
    return next(req);
  };
  const server = new EmulatorServer({
    routes: frontendRoutes(manager, streams),
    interceptors: [countCalls],
    protocols: {
      grpc: options.protocols?.grpc ?? true,
      grpcWeb: options.protocols?.grpcWeb ?? true,
      connect: options.protocols?.connect ?? true,
    },
    corsOrigins: options.corsOrigins ?? "localhost",
    maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    tls: options.tls,
  });
  const port = await server.listen(options.port ?? 0, host);
  let closed = false;

  return {
    url: formatUrl(options.tls !== undefined, host, port),
    port,
    serve: (application: string, handler: TaskHandler) => manager.serve(application, handler),
    unserve: (application: string) => manager.unserve(application),
    pause: () => manager.pause(),
    resume: () => manager.resume(),
    dropStreams: () => streams.dropAll(),
    async restart() {
      await server.close();
      await server.listen(port, host);
    },
    stats(): EmulatorStats {
      return {
        openStreams: streams.size,
        streamsCancelled: streams.cancelled,
        streamsStarted: streams.started,
        calls: { ...calls },
      };
    },
    reset() {
      manager.reset();
      streams.resetCounters();
      calls = {};
    },
    async close() {
      if (closed) return;
      closed = true;
      manager.stopAll();
      await server.close();
    },
  };
}
