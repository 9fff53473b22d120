import { Observable } from "rxjs";
import type { RunAllOptions, RunManyOptions, RunProgress } from "./bulk.js";
import { runAll, runMany } from "./bulk.js";
import type { CallOptions } from "./call-options.js";
import type { TaskCodec } from "./codec.js";
import { bytesCodec } from "./codec.js";
import { FlameError, replyError } from "./errors.js";
import { CreateTaskRequestSchema } from "./gen/flame/v1/frontend_pb.js";
import type { Session as SessionMessage } from "./gen/flame/v1/types_pb.js";
import { SessionState, TaskState } from "./gen/flame/v1/types_pb.js";
import { PendingWait } from "./internal/bind-watch.js";
import { followTask } from "./internal/follow-task.js";
import { sortById } from "./internal/list-order.js";
import { checkRequestSize, roughSize } from "./internal/request-size.js";
import type { Rpc } from "./internal/rpc.js";
import type { Scope } from "./internal/scope.js";
import { decideBySession } from "./internal/session-check.js";
import { ResourceRequirement } from "./resource-requirement.js";
import type { Task, TaskEvent } from "./task.js";
import { msToDate, toTask } from "./task.js";
import type { TaskResult } from "./task-result.js";
import { lacksFailureEvent, toTaskResult } from "./task-result.js";
import type { WatchSessionOptions } from "./watch-session.js";
import { watchSession } from "./watch-session.js";
import type { WatchTaskOptions } from "./watch-task.js";
import { watchTask } from "./watch-task.js";

/** What the Connection needs from a Session (closing goes through it). */
export interface SessionOwner {
  closeSession(id: string, options?: CallOptions): Promise<Session>;
}

/**
 * A Flame session: its metadata and counters as plain fields (a snapshot
 * from the last call that returned the session; `refresh()` renews it), and
 * the calls that act on its tasks. `In`/`Out` are the task input and output
 * types of its codec (bytes unless a codec was given).
 */
export class Session<In = Uint8Array, Out = Uint8Array> {
  id = "";
  application = "";
  state: SessionState = SessionState.Open;
  creationTime: Date = new Date(0);
  completionTime?: Date;
  pending = 0;
  running = 0;
  succeed = 0;
  failed = 0;
  cancelled = 0;
  minInstances = 0;
  /** Absent: unlimited. */
  maxInstances?: number;
  /** 0 is the lowest. */
  priority = 0;
  /** Absent: the cluster's default. */
  resreq?: ResourceRequirement;
  commonData?: Uint8Array;
  events: TaskEvent[] = [];

  /** @internal Use `Connection.createSession` and friends. */
  constructor(
    private readonly rpc: Rpc,
    private readonly owner: SessionOwner,
    message: SessionMessage,
    readonly codec: TaskCodec<In, Out>,
  ) {
    this.update(message);
  }

  /** @internal Replaces the snapshot with a newer one from the server. */
  update(message: SessionMessage): this {
    const spec = message.spec;
    const status = message.status;
    // A reply that leaves its metadata out keeps the id the session has.
    this.id = message.metadata?.id || this.id;
    this.application = spec?.application ?? "";
    this.state = status?.state ?? SessionState.Open;
    this.creationTime = msToDate(status?.creationTime ?? 0n);
    this.completionTime =
      status?.completionTime === undefined ? undefined : msToDate(status.completionTime);
    this.pending = status?.pending ?? 0;
    this.running = status?.running ?? 0;
    this.succeed = status?.succeed ?? 0;
    this.failed = status?.failed ?? 0;
    this.cancelled = status?.cancelled ?? 0;
    this.minInstances = spec?.minInstances ?? 0;
    this.maxInstances = spec?.maxInstances;
    this.priority = spec?.priority ?? 0;
    this.resreq = spec?.resreq ? ResourceRequirement.fromMessage(spec.resreq) : undefined;
    this.commonData = spec?.commonData;
    this.events = (status?.events ?? []).map((e) => {
      const event: TaskEvent = { code: e.code, creationTime: msToDate(e.creationTime) };
      if (e.message !== undefined) event.message = e.message;
      return event;
    });
    return this;
  }

  /** The same session with other codecs (shares nothing mutable but the connection). */
  withCodec<I, O>(codec: TaskCodec<I, O>): Session<I, O> {
    const copy = new Session<I, O>(this.rpc, this.owner, emptySession, codec);
    Object.assign(copy, { ...this, codec });
    return copy;
  }

  /**
   * Creates a task. Never retried: a retry could create it twice. A closed
   * session fails with kind "invalid-state", an unknown one "not-found"
   * (where Flame's answer does not say which, one GetSession decides); an
   * input that makes the request bigger than `maxRequestBytes` (Flame's
   * 4 MiB) fails with "invalid-input" before anything is sent.
   */
  createTask(input?: In, options?: CallOptions): Promise<Task> {
    return this.createTaskIn(input, undefined, options?.headers, options);
  }

  private async createTaskIn(
    input: In | undefined,
    scope: Scope | undefined,
    headers: HeadersInit | undefined,
    options?: CallOptions,
  ): Promise<Task> {
    const bytes = input === undefined ? undefined : this.codec.input.encode(input);
    const request = { task: { sessionId: this.id, input: bytes } };
    const limit = this.rpc.maxRequestBytes;
    const rough = roughSize(bytes?.byteLength ?? 0, this.id);
    checkRequestSize("CreateTask", limit, CreateTaskRequestSchema, request, rough);
    const callOptions = scope === undefined ? options : { scope, headers };
    const message = await this.rpc
      .unary("CreateTask", (o) => this.rpc.client.createTask(request, o), callOptions, false)
      .catch(async (err: unknown) => {
        throw await decideBySession(this.rpc, err, this.id, callOptions);
      });
    const task = toTask(message, { sessionId: this.id });
    // Without its id the task could never be watched, read or cancelled.
    if (task.id === "") throw replyError("CreateTask", "the reply carried no task id");
    return task;
  }

  /** One task; FlameError "not-found" if there is none with this id. */
  async getTask(id: string, options?: CallOptions): Promise<Task> {
    const message = await this.rpc.unary(
      "GetTask",
      (o) => this.rpc.client.getTask({ sessionId: this.id, taskId: id }, o),
      options,
      true,
    );
    return toTask(message, { id, sessionId: this.id });
  }

  /**
   * Every task of the session by id (ListTask streams them in no particular
   * order; collected and sorted here). On real Flame the tasks carry no
   * events (or a stale copy): `getTask` has them.
   */
  async listTasks(options?: CallOptions): Promise<Task[]> {
    const tasks = await this.rpc.unary(
      "ListTask",
      async (o) => {
        const tasks: Task[] = [];
        for await (const m of this.rpc.client.listTask({ sessionId: this.id }, o)) {
          tasks.push(toTask(m, { sessionId: this.id }));
        }
        return tasks;
      },
      options,
      true,
      undefined,
    );
    return sortById(tasks);
  }

  /**
   * A cold Observable of one task: current state, then every change, then
   * complete after the terminal state (see `watchTask` in watch-task.ts for
   * how Flame's gaps are filled). Replaces flame-rs's `TaskInformer`.
   */
  watchTask(id: string, options?: WatchTaskOptions): Observable<Task> {
    return watchTask(this.rpc, this.id, id, options);
  }

  /**
   * Creates a task and watches it: a cold Observable, so each subscription
   * creates one task. The first value is CreateTask's answer.
   */
  runTask(input?: In, options?: WatchTaskOptions): Observable<Task> {
    return new Observable<Task>((subscriber) => {
      const scope = this.rpc.scope(options);
      const headers = options?.headers;
      const pending = new PendingWait(this.rpc, this.id, headers, (err) => scope.abort(err));
      const next = (task: Task) => {
        pending.see(task);
        subscriber.next(task);
      };
      this.createTaskIn(input, scope, headers)
        .then((created) =>
          followTask(this.rpc, this.id, created.id, next, {
            scope,
            headers,
            initial: created,
            maxResumes: options?.maxResumes,
          }),
        )
        .finally(() => pending.stop())
        .then(
          () => subscriber.complete(),
          (err) => subscriber.error(err),
        );
      return () => scope.dispose();
    });
  }

  /**
   * Runs one task to its end (flame-rs `run`): resolves with the final
   * state, the decoded output, and for a failed task the code (3) and
   * message of its Failed event, read with GetTask when the watch brought
   * the end without it (real Flame's WatchTask carries no events). Rejects
   * when the call itself fails, and with kind "bind-failed" when Flame
   * reports that the session's application cannot start (ConnectionOptions
   * `bindCheckMs`).
   */
  async run(input?: In, options?: CallOptions): Promise<TaskResult<Out>> {
    const scope = this.rpc.scope(options);
    try {
      return await this.runIn(input, scope, options?.headers);
    } finally {
      scope.dispose();
    }
  }

  /**
   * Runs one task and resolves with its decoded output (flame-rs
   * `invoke`). A task that fails rejects with a FlameError (kind
   * "internal") carrying the task's error message as `serverMessage`; a
   * cancelled task rejects with kind "cancelled".
   */
  async invoke(input?: In, options?: CallOptions): Promise<Out> {
    const result = await this.run(input, options);
    if (result.state === TaskState.Succeed) return result.output as Out;
    const state = TaskState[result.state];
    const detail = result.errorMessage ? `: ${result.errorMessage}` : "";
    throw Object.assign(
      new FlameError(`task ${this.id}/${result.taskId} ${state}${detail}`, {
        kind: result.state === TaskState.Cancelled ? "cancelled" : "internal",
        serverMessage: result.errorMessage,
      }),
      { task: result.task },
    );
  }

  /**
   * Runs many inputs with at most `concurrency` (default 16) in flight: a
   * cold Observable of `{ index, result, done, total }` in completion
   * order, for progress bars. See bulk.ts for the error rules.
   */
  runMany(
    inputs: Iterable<In> | ArrayLike<In>,
    options?: RunManyOptions,
  ): Observable<RunProgress<Out>> {
    const headers = options?.headers;
    return runMany(
      inputs,
      options,
      (input, scope) => this.runIn(input, scope, headers),
      () => this.rpc.scope(options),
    );
  }

  /** `runMany` as a Promise of the results in input order, with `onProgress(done, total)`. */
  runAll(
    inputs: Iterable<In> | ArrayLike<In>,
    options?: RunAllOptions,
  ): Promise<TaskResult<Out>[]> {
    return runAll(this.runMany(inputs, options), options?.onProgress);
  }

  /** Every task change in the session within a stream budget; see watch-session.ts. */
  watchSession(options?: WatchSessionOptions): Observable<Task> {
    return watchSession(this.rpc, this.id, options);
  }

  /**
   * Closes the session (idempotent). Pending tasks become Cancelled; it
   * fails with kind "invalid-state" while tasks are running.
   */
  async close(options?: CallOptions): Promise<this> {
    const closed = await this.owner.closeSession(this.id, options);
    return this.copyFrom(closed);
  }

  /** Reads the session again and updates these fields. */
  async refresh(options?: CallOptions): Promise<this> {
    const message = await this.rpc.unary(
      "GetSession",
      (o) => this.rpc.client.getSession({ sessionId: this.id }, o),
      options,
      true,
    );
    return this.update(message);
  }

  private copyFrom(other: Session<unknown, unknown>): this {
    const {
      codec: _codec,
      rpc: _rpc,
      owner: _owner,
      ...fields
    } = other as unknown as Record<string, unknown>;
    Object.assign(this, fields);
    return this;
  }

  private async runIn(
    input: In | undefined,
    scope: Scope,
    headers: HeadersInit | undefined,
  ): Promise<TaskResult<Out>> {
    const created = await this.createTaskIn(input, scope, headers);
    // A stuck session fails the scope: in runMany, the whole run.
    const pending = new PendingWait(this.rpc, this.id, headers, (err) => scope.abort(err));
    let task: Task;
    try {
      task = await followTask(this.rpc, this.id, created.id, (t) => pending.see(t), {
        scope,
        headers,
        initial: created,
      });
    } finally {
      pending.stop();
    }
    if (lacksFailureEvent(task)) {
      const read = await this.rpc.unary(
        "GetTask",
        (o) => this.rpc.client.getTask({ sessionId: this.id, taskId: task.id }, o),
        { scope, headers },
        true,
      );
      task = toTask(read, { id: task.id, sessionId: this.id });
    }
    return toTaskResult(task, this.codec.output);
  }
}

const emptySession = {} as SessionMessage;

/** The default codecs of a session. */
export const defaultCodec = bytesCodec;
