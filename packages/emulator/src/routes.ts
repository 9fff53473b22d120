import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import type { ApplicationSpecInit } from "./applications.js";
import { ExecutorPool, type NodeDescription } from "./executors.js";
import { frontendRoutes } from "./frontend-service.js";
import type { EmulatorStats, TaskHandler } from "./options.js";
import { SessionManager } from "./session-manager.js";
import { StreamRegistry } from "./stream-registry.js";

export interface EmulatorRoutesOptions {
  /** The node's name; default "flame-emulator". */
  hostname?: string;
  pendingDelayMs?: number;
  runningDelayMs?: number;
  applications?: Record<string, ApplicationSpecInit>;
  maxExecutors?: number;
  /** What ListNodes reports; default one CPU and 1 GiB on an unknown arch/os. */
  node?: Partial<Omit<NodeDescription, "hostname">>;
}

/**
 * The emulator without a server: Connect routes plus the knobs. Mount the
 * routes with `createRouterTransport(routes, { router: { interceptors } })`
 * for an in-memory Flame (Node or browser: no Node built-ins here), or on
 * any Connect server. `startEmulator()` is built on it.
 */
export interface EmulatorRoutes {
  routes: (router: ConnectRouter) => void;
  /** Count calls for stats(); pass them to the router that mounts `routes`. */
  interceptors: Interceptor[];
  serve(application: string, handler: TaskHandler): void;
  unserve(application: string): void;
  pause(): void;
  resume(): void;
  dropStreams(): void;
  stats(): EmulatorStats;
  reset(): void;
  /** Abort running handlers and timers, end every stream. */
  stop(): void;
}

export function createEmulatorRoutes(options: EmulatorRoutesOptions = {}): EmulatorRoutes {
  const hostname = options.hostname ?? "flame-emulator";
  const node: NodeDescription = {
    hostname,
    capacity: options.node?.capacity ?? { cpu: 1n, memory: 1024n * 1024n * 1024n, gpu: 0 },
    arch: options.node?.arch ?? "unknown",
    os: options.node?.os ?? "unknown",
    addresses: options.node?.addresses ?? [{ type: "Hostname", address: hostname }],
  };
  const manager = new SessionManager(
    {
      hostname,
      pendingDelayMs: options.pendingDelayMs ?? 0,
      runningDelayMs: options.runningDelayMs ?? 0,
      applications: options.applications ?? {},
    },
    new ExecutorPool(node, options.maxExecutors ?? 64),
  );
  const streams = new StreamRegistry();
  let calls: Record<string, number> = {};
  const countCalls: Interceptor = (next) => (req) => {
    calls[req.method.name] = (calls[req.method.name] ?? 0) + 1;
    return next(req);
  };
  return {
    routes: frontendRoutes(manager, streams),
    interceptors: [countCalls],
    serve: (application, handler) => manager.serve(application, handler),
    unserve: (application) => manager.unserve(application),
    pause: () => manager.pause(),
    resume: () => manager.resume(),
    dropStreams: () => streams.dropAll(),
    stats: () => ({
      openStreams: streams.size,
      streamsCancelled: streams.cancelled,
      streamsStarted: streams.started,
      calls: { ...calls },
    }),
    reset() {
      manager.reset();
      streams.resetCounters();
      calls = {};
    },
    stop: () => manager.stopAll(),
  };
}
