import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ApplicationSpec, ApplicationSpecSchema, SessionSpec } from "@flame-ts/core/gen";
import type { ConnectionLimits } from "./connection-limits.js";

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
  /** Most executors the node runs at once (the cap on concurrently running tasks); default 64. */
  maxExecutors?: number;
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

export type { ApplicationSpec, SessionSpec };
