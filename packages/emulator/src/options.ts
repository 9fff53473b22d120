import type { MessageInitShape } from "@bufbuild/protobuf";
import type {
  ApplicationSpec,
  ApplicationSpecSchema,
  ResourceRequirement,
  SessionSpec,
} from "@flame-ts/core/gen";
import type { ConnectionLimits } from "./connection-limits.js";
import type { EmulatorStorage } from "./storage.js";

/** What a task handler is given for one task. */
export interface TaskContext {
  /** The task's input bytes, if the client sent any. */
  input?: Uint8Array;
  /** The session's common data, if the session has any. */
  commonData?: Uint8Array;
  sessionId: string;
  taskId: string;
  application: string;
  /** Aborted when the emulator is reset or closed while the task runs. */
  signal: AbortSignal;
}

/**
 * Runs one task of an application. The returned bytes (or string, encoded as
 * UTF-8) become the task's output; `undefined` means no output. Throwing makes
 * the task Failed with the error's message in its last event (code 3).
 */
export type TaskHandler = (
  task: TaskContext,
) => Promise<Uint8Array | string | undefined> | Uint8Array | string | undefined;

/** Which wire protocols the one port speaks. All are on by default. */
export interface EmulatorProtocols {
  grpc?: boolean;
  grpcWeb?: boolean;
  connect?: boolean;
}

/**
 * How an application's instances fail to start: each executor that tries to
 * bind one of its sessions records a session event 1001 (SESSION_BIND_FAILED)
 * with this return code and message.
 */
export interface StartFailure {
  /** The bind's return code; default 11 (Flame's BIND_RESULT_SHIM_CREATE_FAILED). */
  returnCode?: number;
  /** Why it failed, appended to the event's message. */
  message?: string;
}

/** Browser origins allowed by CORS: "localhost" means any http(s) localhost origin, any port. */
export type CorsOrigins = "localhost" | ReadonlyArray<string | RegExp>;

/** Options of `startEmulator`; the connection limits default to Node's own where Node has one. */
export interface EmulatorOptions extends Partial<ConnectionLimits> {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  protocols?: EmulatorProtocols;
  corsOrigins?: CorsOrigins;
  /** How long a new task stays Pending before it may run (ms, default 0). */
  pendingDelayMs?: number;
  /** How long a task stays Running before its handler is called (ms, default 0). */
  runningDelayMs?: number;
  /** Serve HTTPS (HTTP/2 over TLS, with HTTP/1.1 fallback) with this certificate. */
  tls?: { cert: string | Uint8Array; key: string | Uint8Array };
  /** Largest message read or written, in bytes; default 64 MiB (a Task carries both its input and output). */
  maxMessageBytes?: number;
  /** The node's name; default os.hostname(). */
  hostname?: string;
  /** Extra applications registered at start (and again after reset()). */
  applications?: Record<string, MessageInitShape<typeof ApplicationSpecSchema>>;
  /**
   * Most executors the node runs at once (the cap on concurrently running
   * tasks); default 64. `0` is a cluster with no executor manager: no node,
   * and every task stays Pending.
   */
  maxExecutors?: number;
  /**
   * Which of Flame's storage engines to answer as: their error codes and
   * messages, time precision and checks differ. Default `"fs"`, what
   * `flmadm install`, the Helm chart and Flame's CI deploy.
   */
  storage?: EmulatorStorage;
  /** Seed for the order of List replies (Flame's are unordered); default a random one. */
  listSeed?: number;
  /**
   * Flame's `limits.max_sessions`: after each create, open and close the
   * closed sessions that finished first leave memory until fewer than this
   * many remain. Default: no limit.
   */
  maxSessions?: number;
  /** Largest request message accepted (tonic's default in Flame: 4 MiB); larger ones are OUT_OF_RANGE. */
  maxRequestBytes?: number;
  /** The resreq of a session that gives none (Flame's `cluster.resreq`); default cpu=1, 1 GiB, gpu=0. */
  defaultResreq?: Pick<ResourceRequirement, "cpu" | "memory" | "gpu">;
  /** Applications whose instances cannot start, and how they fail (see `failToStart`). */
  failToStart?: Record<string, StartFailure>;
  /** Failed binds before a session gets no executor again (Flame's `recovery.session.retry_limits`); default 5. */
  sessionRetryLimit?: number;
}

/** Counters for tests that check what the server saw. */
export interface EmulatorStats {
  /** Server streams (WatchTask, ListTask) open right now. */
  openStreams: number;
  /** Server streams ended because the client cancelled them. */
  streamsCancelled: number;
  /** Server streams started since the emulator started (or since reset()). */
  streamsStarted: number;
  /** Calls per Frontend method name, e.g. `{ CreateTask: 3 }`. */
  calls: Record<string, number>;
}

export interface Emulator {
  /** Base URL, e.g. "http://127.0.0.1:40123". */
  readonly url: string;
  readonly port: number;
  /** Run the tasks of `application` with `handler` (replaces any earlier one). */
  serve(application: string, handler: TaskHandler): void;
  /** Remove the handler; the application's tasks echo their input again. */
  unserve(application: string): void;
  /**
   * Make `application`'s instances fail to start: its sessions' tasks stay
   * Pending, and GetSession/ListSession carry events 1001 (each failed bind)
   * and 1002 (retry limit reached, after which the session gets no executor).
   */
  failToStart(application: string, failure?: StartFailure): void;
  /** Undo failToStart for sessions that have not yet reached the retry limit. */
  allowStart(application: string): void;
  /**
   * Lose every executor, as when Flame loses its node: running handlers are
   * aborted; on sqlite and fs their tasks silently go back to Pending and run
   * again, on none they stay Running for ever.
   */
  loseExecutors(): void;
  /** Stop starting tasks: pending tasks stay Pending until resume(). */
  pause(): void;
  resume(): void;
  /** Abruptly break every open server stream (WatchTask, ListTask). */
  dropStreams(): void;
  /** Stop listening, drop every connection, then listen again on the same port; state is kept. */
  restart(): Promise<void>;
  stats(): EmulatorStats;
  /** Forget every session, task, handler and registered application; back to the three defaults. */
  reset(): void;
  close(): Promise<void>;
}

export type { ApplicationSpec, EmulatorStorage, SessionSpec };
