import type { Observable } from "rxjs";
import type { RunAllOptions, RunManyOptions, RunProgress } from "./bulk.js";
import { runAll, runMany } from "./bulk.js";
import type { CallOptions } from "./call-options.js";
import type { Channel } from "./channel.js";
import type { TaskCodec } from "./codec.js";
import { bytesCodec } from "./codec.js";
import { SessionState } from "./gen/flame/v1/types_pb.js";
import { ResourceRequirement } from "./resource-requirement.js";
import { invoke, run, runTask } from "./run.js";
import type { SessionInfo } from "./session-info.js";
import { closeSession, getSession } from "./sessions.js";
import type { Task, TaskEvent } from "./task.js";
import type { TaskResult } from "./task-result.js";
import { createTask, getTask, listTasks } from "./tasks.js";
import type { WatchSessionOptions } from "./watch-session.js";
import { watchSession } from "./watch-session.js";
import type { WatchTaskOptions } from "./watch-task.js";
import { watchTask } from "./watch-task.js";

/**
 * A Flame session: its metadata and counters as plain fields (a snapshot
 * from the last call that returned the session; `refresh()` renews it), and
 * the calls that act on its tasks as methods. `In`/`Out` are the task input
 * and output types of its codec (bytes unless a codec was given). Each
 * method is also a standalone function taking the connection and the
 * session (`run(connection, session, input)`), for bundles that want only
 * some of them.
 */
export class Session<In = Uint8Array, Out = Uint8Array> implements SessionInfo {
  id = "";
  application = "";
  state: SessionState = SessionState.Open;
  creationTime: Date = new Date(0);
  completionTime?: Date | undefined;
  pending = 0;
  running = 0;
  succeed = 0;
  failed = 0;
  cancelled = 0;
  minInstances = 0;
  /** Absent: unlimited. */
  maxInstances?: number | undefined;
  /** 0 is the lowest. */
  priority = 0;
  /** Absent: the cluster's default. */
  resreq?: ResourceRequirement | undefined;
  commonData?: Uint8Array | undefined;
  events: TaskEvent[] = [];

  /** @internal Use `Connection.createSession` and friends. */
  constructor(
    private readonly channel: Channel,
    info: SessionInfo,
    readonly codec: TaskCodec<In, Out> = bytesCodec as unknown as TaskCodec<In, Out>,
  ) {
    this.set(info);
  }

  /** The same session with other codecs (shares nothing mutable but the connection). */
  withCodec<I, O>(codec: TaskCodec<I, O>): Session<I, O> {
    return new Session<I, O>(this.channel, this, codec);
  }

  /** See the standalone `createTask`. */
  createTask(input?: In, options?: CallOptions): Promise<Task> {
    return createTask(this.channel, this, input, options);
  }

  /** One task; FlameError "not-found" if there is none with this id. */
  getTask(id: string, options?: CallOptions): Promise<Task> {
    return getTask(this.channel, this, id, options);
  }

  /** Every task of the session by id; see the standalone `listTasks`. */
  listTasks(options?: CallOptions): Promise<Task[]> {
    return listTasks(this.channel, this, options);
  }

  /**
   * A cold Observable of one task: current state, then every change, then
   * complete after the terminal state (see `watchTask` in watch-task.ts for
   * how Flame's gaps are filled). Replaces flame-rs's `TaskInformer`.
   */
  watchTask(id: string, options?: WatchTaskOptions): Observable<Task> {
    return watchTask(this.channel, this, id, options);
  }

  /** Creates a task and watches it; see the standalone `runTask`. */
  runTask(input?: In, options?: WatchTaskOptions): Observable<Task> {
    return runTask(this.channel, this, input, options);
  }

  /** Runs one task to its end (flame-rs `run`); see the standalone `run`. */
  run(input?: In, options?: CallOptions): Promise<TaskResult<Out>> {
    return run(this.channel, this, input, options);
  }

  /** Runs one task and resolves with its output (flame-rs `invoke`); see the standalone `invoke`. */
  invoke(input?: In, options?: CallOptions): Promise<Out> {
    return invoke(this.channel, this, input, options);
  }

  /**
   * Runs many inputs with at most `concurrency` (default 16) in flight: a
   * cold Observable of `{ index, result, done, total }` in completion
   * order, for progress bars. See the standalone `runMany` for the error rules.
   */
  runMany(
    inputs: Iterable<In> | ArrayLike<In>,
    options?: RunManyOptions,
  ): Observable<RunProgress<Out>> {
    return runMany(this.channel, this, inputs, options);
  }

  /** `runMany` as a Promise of the results in input order, with `onProgress(done, total)`. */
  runAll(
    inputs: Iterable<In> | ArrayLike<In>,
    options?: RunAllOptions,
  ): Promise<TaskResult<Out>[]> {
    return runAll(this.channel, this, inputs, options);
  }

  /** Every task change in the session within a stream budget; see watch-session.ts. */
  watchSession(options?: WatchSessionOptions): Observable<Task> {
    return watchSession(this.channel, this, options);
  }

  /**
   * Closes the session (idempotent). Pending tasks become Cancelled; it
   * fails with kind "invalid-state" while tasks are running.
   */
  async close(options?: CallOptions): Promise<this> {
    return this.set(await closeSession(this.channel, this.id, options));
  }

  /** Reads the session again and updates these fields. */
  async refresh(options?: CallOptions): Promise<this> {
    return this.set(await getSession(this.channel, this.id, options));
  }

  private set(info: SessionInfo): this {
    this.id = info.id || this.id;
    this.application = info.application;
    this.state = info.state;
    this.creationTime = info.creationTime;
    this.completionTime = info.completionTime;
    this.pending = info.pending;
    this.running = info.running;
    this.succeed = info.succeed;
    this.failed = info.failed;
    this.cancelled = info.cancelled;
    this.minInstances = info.minInstances;
    this.maxInstances = info.maxInstances;
    this.priority = info.priority;
    this.resreq = info.resreq && new ResourceRequirement(info.resreq);
    this.commonData = info.commonData;
    this.events = [...info.events];
    return this;
  }
}
