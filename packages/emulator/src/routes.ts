import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import type { ApplicationSpecInit } from "./applications.js";
import { ExecutorPool, type NodeDescription, type Resources } from "./executors.js";
import { frontendRoutes } from "./frontend-service.js";
import { ListOrder } from "./list-order.js";
import type { EmulatorStats, StartFailure, TaskHandler } from "./options.js";
import { FLAME_MAX_REQUEST_BYTES, requestLimit } from "./request-limit.js";
import { SessionManager } from "./session-manager.js";
import { DEFAULT_RESREQ } from "./session-spec.js";
import { type EmulatorStorage, storageEngine } from "./storage.js";
import { StreamRegistry } from "./stream-registry.js";

export interface EmulatorRoutesOptions {
  /** The node's name; default "flame-emulator". */
  hostname?: string;
  pendingDelayMs?: number;
  runningDelayMs?: number;
  applications?: Record<string, ApplicationSpecInit>;
  maxExecutors?: number;
  /** What ListNodes reports; default one CPU and 1 GiB on an unknown arch/os, no addresses. */
  node?: Partial<Omit<NodeDescription, "hostname">>;
  /** Flame's storage engine to answer as; default "fs". */
  storage?: EmulatorStorage;
  /** Seed for the order of List replies; default a random one. */
  listSeed?: number;
  /** Closed sessions beyond this many are evicted (Flame's `limits.max_sessions`); default none. */
  maxSessions?: number;
  /** Largest request message; default 4 MiB, as tonic in Flame. */
  maxRequestBytes?: number;
  /** A session's resreq when it gives none; default cpu=1, 1 GiB, gpu=0. */
  defaultResreq?: Resources;
  /** Applications whose instances cannot start. */
  failToStart?: Record<string, StartFailure>;
  /** Failed binds before a session gets no executor again; default 5. */
  sessionRetryLimit?: number;
}

/**
 * The emulator without a server: Connect routes plus the knobs. Mount the
 * routes with `createRouterTransport(routes, { router: { interceptors } })`
 * for an in-memory Flame (Node or browser: no Node built-ins here), or on
 * any Connect server. `startEmulator()` is built on it.
 */
export interface EmulatorRoutes {
  routes: (router: ConnectRouter) => void;
  /** Count calls for stats() and refuse oversized requests; pass them to the router that mounts `routes`. */
  interceptors: Interceptor[];
  serve(application: string, handler: TaskHandler): void;
  unserve(application: string): void;
  failToStart(application: string, failure?: StartFailure): void;
  allowStart(application: string): void;
  loseExecutors(): void;
  pause(): void;
  resume(): void;
  dropStreams(): void;
  stats(): EmulatorStats;
  reset(): void;
  /** Abort running handlers and timers, end every stream. */
  stop(): void;
}

const positive = (name: string, value: number | undefined): number | undefined => {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
};

export function createEmulatorRoutes(options: EmulatorRoutesOptions = {}): EmulatorRoutes {
  const hostname = options.hostname ?? "flame-emulator";
  const node: NodeDescription = {
    hostname,
    capacity: options.node?.capacity ?? { cpu: 1n, memory: 1024n * 1024n * 1024n, gpu: 0 },
    arch: options.node?.arch ?? "unknown",
    os: options.node?.os ?? "unknown",
    addresses: options.node?.addresses ?? [],
  };
  const maxExecutors = options.maxExecutors ?? 64;
  if (!Number.isInteger(maxExecutors) || maxExecutors < 0) {
    throw new RangeError(`maxExecutors must be a non-negative integer, got ${maxExecutors}`);
  }
  const manager = new SessionManager(
    {
      hostname,
      pendingDelayMs: options.pendingDelayMs ?? 0,
      runningDelayMs: options.runningDelayMs ?? 0,
      applications: options.applications ?? {},
      storage: storageEngine(options.storage ?? "fs"),
      maxSessions: positive("maxSessions", options.maxSessions),
      defaultResreq: options.defaultResreq ?? DEFAULT_RESREQ,
      sessionRetryLimit: positive("sessionRetryLimit", options.sessionRetryLimit) ?? 5,
      failToStart: options.failToStart ?? {},
    },
    new ExecutorPool(node, maxExecutors),
  );
  const streams = new StreamRegistry();
  const order = new ListOrder(options.listSeed ?? Math.floor(Math.random() * 2 ** 32));
  let calls: Record<string, number> = {};
  const countCalls: Interceptor = (next) => (req) => {
    calls[req.method.name] = (calls[req.method.name] ?? 0) + 1;
    return next(req);
  };
  const maxRequestBytes =
    positive("maxRequestBytes", options.maxRequestBytes) ?? FLAME_MAX_REQUEST_BYTES;
  return {
    routes: frontendRoutes(manager, streams, order),
    interceptors: [countCalls, requestLimit(maxRequestBytes)],
    serve: (application, handler) => manager.serve(application, handler),
    unserve: (application) => manager.unserve(application),
    failToStart: (application, failure) => manager.failToStart(application, failure),
    allowStart: (application) => manager.allowStart(application),
    loseExecutors: () => manager.loseExecutors(),
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
      order.reset();
      calls = {};
    },
    stop: () => manager.stopAll(),
  };
}
