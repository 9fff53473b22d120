import {
  type ApplicationSpec,
  type SessionSpec,
  SessionState,
  Shim,
  TaskState,
} from "@flame-ts/core/gen";
import { applicationNameProblem } from "./application-name.js";
import {
  type ApplicationRecord,
  type ApplicationSpecInit,
  DEFAULT_APPLICATIONS,
  newApplicationRecord,
  withFlameDefaults,
} from "./applications.js";
import { AsyncQueue } from "./async-queue.js";
import { errorMessage, internal, invalidConfig, notFound } from "./errors.js";
import type { ExecutorPool, ExecutorRecord, Resources } from "./executors.js";
import {
  bindFailed,
  retryLimitReached,
  taskCreated,
  taskFailed,
  taskRunning,
  taskSucceeded,
} from "./flame-events.js";
import { makeFlmping } from "./flmping.js";
import type { StartFailure, TaskHandler } from "./options.js";
import {
  decrement,
  type EventInit,
  increment,
  isTerminal,
  type SessionRecord,
  type TaskMessage,
  type TaskRecord,
  toTask,
} from "./records.js";
import { firstDifference, type NormalisedSpec, normalise } from "./session-spec.js";
import type { StorageEngine } from "./storage.js";
import { TaskFailure } from "./task-failure.js";
import { parseTaskId } from "./task-id.js";
import { randomUuid } from "./uuid.js";

export interface SessionManagerOptions {
  hostname: string;
  pendingDelayMs: number;
  runningDelayMs: number;
  applications: Record<string, ApplicationSpecInit>;
  storage: StorageEngine;
  /** Closed sessions are evicted from memory to keep fewer than this many. */
  maxSessions: number | undefined;
  /** The resreq of a session that gives none (`cluster.resreq`). */
  defaultResreq: Resources;
  /** Failed binds before a session gets no more executors (`recovery.session.retry_limits`). */
  sessionRetryLimit: number;
  /** Applications whose instances cannot start. */
  failToStart: Record<string, StartFailure>;
}

/** What a bind failure reports when the knob says nothing more. */
export const DEFAULT_START_FAILURE: Required<StartFailure> = {
  // BIND_RESULT_SHIM_CREATE_FAILED: the application's process could not be started.
  returnCode: 11,
  message: "failed to start the application's instance",
};

const encoder = new TextEncoder();

const echo: TaskHandler = (task) => task.input;

/** A handler's result as task output; anything but bytes, text or nothing fails the task. */
const toOutput = (result: unknown): Uint8Array | undefined => {
  if (result === undefined || result === null) return undefined;
  if (typeof result === "string") return encoder.encode(result);
  if (result instanceof Uint8Array) return result;
  throw new Error(
    `handler returned ${typeof result}; expected a Uint8Array, a string or undefined`,
  );
};

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  });

/**
 * The in-memory state of one Flame session manager: applications, sessions,
 * tasks, the scheduler that moves tasks through their states, and the
 * executors that run them. Where Flame's storage engines differ, the
 * `storage` option answers. Free of Node built-ins so it can run anywhere.
 */
export class SessionManager {
  readonly applications = new Map<string, ApplicationRecord>();
  /** Sessions in memory: what Get/List/Close/Delete see. */
  readonly sessions = new Map<string, SessionRecord>();
  /** Sessions evicted from memory but still in storage (sqlite, fs): ids and states. */
  private readonly stored = new Map<string, { application: string }>();
  private readonly handlers = new Map<string, TaskHandler>();
  private readonly failing = new Map<string, StartFailure>();
  private readonly flmping: TaskHandler;
  private readonly storage: StorageEngine;
  /** Sessions with ready tasks, for the scheduler. */
  private readonly waiting = new Set<SessionRecord>();
  private readonly appRunning = new Map<string, number>();
  /** Running tasks and what runs them. */
  private readonly running = new Map<TaskRecord, Launch>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private sessionSeq = 0;
  private paused = false;
  private scheduling = false;
  private rescheduling = false;

  constructor(
    private readonly options: SessionManagerOptions,
    readonly executors: ExecutorPool,
  ) {
    this.storage = options.storage;
    this.flmping = makeFlmping(options.hostname);
    for (const [name, failure] of Object.entries(options.failToStart)) {
      this.failing.set(name, failure);
    }
    this.registerDefaults();
  }

  // --- handlers and knobs -------------------------------------------------

  serve(application: string, handler: TaskHandler): void {
    this.handlers.set(application, handler);
  }

  unserve(application: string): void {
    this.handlers.delete(application);
  }

  /** From now on `application`'s instances fail to start: its sessions collect bind failures. */
  failToStart(application: string, failure: StartFailure = {}): void {
    this.failing.set(application, failure);
  }

  /** Its instances start again (sessions already past the retry limit stay paused, as in Flame). */
  allowStart(application: string): void {
    this.failing.delete(application);
    this.schedule();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.schedule();
  }

  /** Forget everything but the handlers and start knobs; abort running tasks; end every watch. */
  reset(): void {
    this.stopAll();
    this.applications.clear();
    this.sessions.clear();
    this.stored.clear();
    this.waiting.clear();
    this.appRunning.clear();
    this.executors.clear();
    this.sessionSeq = 0;
    this.paused = false;
    this.registerDefaults();
  }

  /** Abort running tasks and pending timers, end all watches (for close/reset). */
  stopAll(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const session of this.sessions.values()) {
      session.deleted = true;
      session.releaseTimer = undefined;
      for (const task of session.tasks.values()) this.endWatchers(task);
    }
    for (const task of this.running.keys()) task.abort?.abort();
    this.running.clear();
  }

  private registerDefaults(): void {
    const all = { ...DEFAULT_APPLICATIONS, ...this.options.applications };
    for (const [name, init] of Object.entries(all)) {
      const spec = this.storage.storedSpec(withFlameDefaults(init), undefined);
      this.applications.set(name, newApplicationRecord(name, spec, this.stamp()));
    }
  }

  /** Now, as the engine stores times: whole seconds on sqlite and fs, milliseconds on none. */
  private stamp(): bigint {
    const now = Date.now();
    return BigInt(this.storage.wholeSeconds ? Math.floor(now / 1000) * 1000 : now);
  }

  /** fs stores empty bytes as absent. */
  private bytes(value: Uint8Array | undefined): Uint8Array | undefined {
    return this.storage.emptyBytesAbsent && value?.length === 0 ? undefined : value;
  }

  // --- applications --------------------------------------------------------

  private openSessionsOf(application: string): number {
    let open = 0;
    for (const session of this.sessions.values()) {
      if (session.spec.application === application && session.state === SessionState.Open) open++;
    }
    return open;
  }

  /** In-band result: undefined on success, else the failure message. */
  registerApplication(name: string, spec: ApplicationSpecInit): string | undefined {
    const refusal =
      applicationNameProblem(name) ??
      this.storage.registerRefusal(name, this.applications.has(name));
    if (refusal !== undefined) return refusal;
    const stored = this.storage.storedSpec(withFlameDefaults(spec), undefined);
    this.applications.set(name, newApplicationRecord(name, stored, this.stamp()));
    this.schedule();
    return undefined;
  }

  updateApplication(name: string, spec: ApplicationSpecInit): string | undefined {
    const existing = this.applications.get(name);
    const refusal =
      applicationNameProblem(name) ??
      this.storage.updateRefusal(name, existing !== undefined, this.openSessionsOf(name));
    if (refusal !== undefined) return refusal;
    // Update replaces the whole spec: what it leaves out goes back to the defaults.
    const stored = this.storage.storedSpec(withFlameDefaults(spec), existing?.spec);
    if (existing) existing.spec = stored;
    else this.applications.set(name, newApplicationRecord(name, stored, this.stamp()));
    this.schedule();
    return undefined;
  }

  /** On success every session of the application leaves memory (its closed ones stay on disk on fs). */
  unregisterApplication(name: string): string | undefined {
    const refusal = this.storage.unregisterRefusal(
      name,
      this.applications.has(name),
      this.openSessionsOf(name),
    );
    if (refusal !== undefined) return refusal;
    this.applications.delete(name);
    for (const session of [...this.sessions.values()]) {
      if (session.spec.application !== name) continue;
      this.dropSession(session);
      if (this.storage.unregisterKeepsSessions) this.stored.set(session.id, { application: name });
    }
    if (!this.storage.unregisterKeepsSessions) {
      for (const [id, stored] of this.stored)
        if (stored.application === name) this.stored.delete(id);
    }
    return undefined;
  }

  getApplication(name: string): ApplicationRecord {
    const app = this.applications.get(name);
    if (!app) throw this.storage.applicationNotFound(name);
    return app;
  }

  // --- sessions -------------------------------------------------------------

  /** GetSession's lookup: an unknown id is NOT_FOUND with the bare id as message. */
  getSession(id: string): SessionRecord {
    const session = this.sessions.get(id);
    if (!session) throw notFound(id);
    return session;
  }

  createSession(id: string, spec: SessionSpec | undefined): SessionRecord {
    if (!spec) throw invalidConfig("session spec");
    return this.insertSession(id, normalise(spec, this.options.defaultResreq));
  }

  /** The engine's create: it checks the application and the id its own way. */
  private insertSession(id: string, spec: NormalisedSpec): SessionRecord {
    if (!this.applications.has(spec.application)) {
      const refusal = this.storage.unknownApplication(spec.application);
      if (refusal) throw refusal;
    }
    const previous = this.sessions.get(id);
    if (previous || this.stored.has(id)) {
      const refusal = this.storage.duplicateSession(id);
      if (refusal) throw refusal;
      // The none engine replaces the session: its tasks and their watchers are gone.
      if (previous) this.dropSession(previous);
    }
    const session: SessionRecord = {
      id,
      seq: this.sessionSeq++,
      spec: { ...spec, commonData: this.bytes(spec.commonData) },
      state: SessionState.Open,
      creationTime: this.stamp(),
      completionTime: undefined,
      events: [],
      tasks: new Map(),
      nextTaskId: 1,
      counts: { pending: 0, running: 0, succeed: 0, failed: 0, cancelled: 0 },
      ready: [],
      head: 0,
      deleted: false,
      bindFailures: 0,
      bindPaused: false,
      lastFinish: 0,
      releaseTimer: undefined,
    };
    this.sessions.set(id, session);
    this.evictClosedSessions();
    return session;
  }

  openSession(id: string, spec: SessionSpec | undefined): SessionRecord {
    const given = spec ? normalise(spec, this.options.defaultResreq) : undefined;
    const existing = this.sessions.get(id);
    if (existing?.state === SessionState.Open) {
      if (given) {
        const difference = firstDifference(existing.spec, given);
        if (difference) throw invalidConfig(`session <${id}> spec mismatch: ${difference}`);
      }
      return existing;
    }
    // Not open in memory: the engine looks in storage, and creates when given a spec.
    const known = existing !== undefined || (this.storage.persistsSessions && this.stored.has(id));
    if (known) {
      const refusal = this.storage.openClosed(id, given !== undefined);
      if (refusal) throw refusal;
    }
    if (!given) throw this.storage.openNotFound(id);
    return this.insertSession(id, given);
  }

  closeSession(id: string): SessionRecord {
    const session = this.sessions.get(id);
    if (!session) throw notFound(`session <${id}>`);
    // Flame's storage refuses this, so it reaches the wire as INTERNAL, not INVALID_ARGUMENT.
    if (session.counts.running > 0) {
      throw internal("Cannot close session with running tasks");
    }
    // Closing again is allowed and moves completion_time to now.
    const at = this.stamp();
    this.cancelPending(session, at);
    session.state = SessionState.Closed;
    session.completionTime = at;
    this.executors.releaseSession(session.id);
    this.evictClosedSessions();
    return session;
  }

  /** Removes a session as the engine allows it; NOT_FOUND if not in memory. */
  deleteSession(id: string): SessionRecord {
    const session = this.sessions.get(id);
    if (!session) throw notFound(`session <${id}>`);
    const { pending, running, cancelled } = session.counts;
    const refusal = this.storage.deleteRefusal({
      open: session.state === SessionState.Open,
      unfinished: pending + running + cancelled,
      nonTerminal: pending + running,
    });
    if (refusal) throw refusal;
    this.dropSession(session);
    return session;
  }

  /** Takes a session out of memory: its watches end quietly, its running tasks are forgotten. */
  private dropSession(session: SessionRecord): void {
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
    session.deleted = true;
    this.waiting.delete(session);
    for (const task of session.tasks.values()) this.endWatchers(task);
    this.executors.releaseSession(session.id);
  }

  /**
   * With `maxSessions`, after each create, open and close: drop the closed
   * sessions that finished first until fewer than the limit remain (Flame's
   * `limits.max_sessions`). sqlite and fs still have them on disk.
   */
  private evictClosedSessions(): void {
    const max = this.options.maxSessions;
    if (max === undefined) return;
    while (this.sessions.size >= max) {
      let oldest: SessionRecord | undefined;
      for (const session of this.sessions.values()) {
        if (session.state !== SessionState.Closed) continue;
        if (!oldest || finishedBefore(session, oldest)) oldest = session;
      }
      if (!oldest) return;
      this.dropSession(oldest);
      if (this.storage.persistsSessions) {
        this.stored.set(oldest.id, { application: oldest.spec.application });
      }
    }
  }

  /** Pending tasks become Cancelled, in memory only: no event, the session's completion time. */
  private cancelPending(session: SessionRecord, at: bigint): void {
    for (const task of session.tasks.values()) {
      if (task.state !== TaskState.Pending) continue;
      this.transition(task, TaskState.Cancelled, at, undefined, false);
    }
    session.ready = [];
    session.head = 0;
    this.waiting.delete(session);
  }

  // --- tasks ----------------------------------------------------------------

  /** Adds a task; the reply is the engine's copy: Pending, no events, whatever happens next. */
  createTask(sessionId: string, input: Uint8Array | undefined): TaskMessage {
    const session = this.sessions.get(sessionId);
    if (!session) {
      // Evicted sessions are closed ones still in storage.
      if (this.storage.persistsSessions && this.stored.has(sessionId)) {
        throw this.storage.taskClosedSession(sessionId) ?? notFound(sessionId);
      }
      throw this.storage.taskUnknownSession(sessionId);
    }
    if (session.state !== SessionState.Open) {
      // The none engine adds it anyway; nothing will ever run it.
      const refusal = this.storage.taskClosedSession(sessionId);
      if (refusal) throw refusal;
    }
    const id = String(session.nextTaskId++);
    const task: TaskRecord = {
      id,
      session,
      input: this.bytes(input),
      output: undefined,
      state: TaskState.Pending,
      creationTime: this.stamp(),
      completionTime: undefined,
      events: [taskCreated()],
      snapshot: [],
      watchers: undefined,
      abort: undefined,
    };
    session.tasks.set(id, task);
    session.counts.pending++;
    const reply = toTask(task, []);
    if (this.options.pendingDelayMs > 0) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.makeReady(task);
      }, this.options.pendingDelayMs);
      this.timers.add(timer);
    } else {
      this.makeReady(task);
    }
    return reply;
  }

  /** Finds a task; an id that is not a 64-bit integer is INVALID_ARGUMENT, as in Flame. */
  findTask(sessionId: string, taskId: string): TaskRecord | undefined {
    const id = parseTaskId(taskId);
    if (id === undefined) throw invalidConfig("invalid task id");
    return this.sessions.get(sessionId)?.tasks.get(id);
  }

  /**
   * GetTask: NOT_FOUND with the bare session id or task number. It also
   * writes the events onto the task record, where later stream messages of
   * the none engine find them.
   */
  getTask(sessionId: string, taskId: string): TaskRecord {
    const id = parseTaskId(taskId);
    if (id === undefined) throw invalidConfig("invalid task id");
    const session = this.sessions.get(sessionId);
    if (!session) throw notFound(sessionId);
    const task = session.tasks.get(id);
    if (!task) throw notFound(id);
    task.snapshot = task.events.slice();
    return task;
  }

  /** A queue of this task's later changes; the caller must unwatch. */
  watch(task: TaskRecord): AsyncQueue<TaskMessage> {
    const queue = new AsyncQueue<TaskMessage>();
    if (!task.watchers) task.watchers = new Map();
    task.watchers.set(queue, task.state);
    return queue;
  }

  unwatch(task: TaskRecord, queue: AsyncQueue<TaskMessage>): void {
    task.watchers?.delete(queue);
    queue.end();
  }

  private endWatchers(task: TaskRecord): void {
    if (!task.watchers) return;
    for (const queue of task.watchers.keys()) queue.end();
    task.watchers.clear();
  }

  private makeReady(task: TaskRecord): void {
    const session = task.session;
    if (task.state !== TaskState.Pending || session.deleted) return;
    // Closed (none engine) or past the bind retry limit: nothing will run it.
    if (session.state !== SessionState.Open || session.bindPaused) return;
    session.ready.push(task);
    this.waiting.add(session);
    this.schedule();
  }

  /**
   * Moves a task to `state`. A change the engine stores (launch, completion)
   * replaces the record with the engine's copy, whose events are empty on
   * sqlite and fs; cancelling touches memory only and keeps them.
   */
  private transition(
    task: TaskRecord,
    state: TaskState,
    at: bigint,
    event: EventInit | undefined,
    stored: boolean,
  ): void {
    const counts = task.session.counts;
    decrement(counts, task.state);
    increment(counts, state);
    task.state = state;
    if (isTerminal(state)) task.completionTime = at;
    if (event) task.events.push(event);
    if (stored && !this.storage.keepsEventSnapshot) task.snapshot = [];
    if (task.watchers && task.watchers.size > 0) {
      const message = toTask(task);
      for (const [queue, seen] of task.watchers) {
        if (seen === state && !isTerminal(state)) continue;
        task.watchers.set(queue, state);
        queue.push(message);
      }
      if (isTerminal(state)) task.watchers.clear();
    }
  }

  // --- scheduling -----------------------------------------------------------

  /** Starts every ready task the limits allow, higher-priority sessions first. */
  schedule(): void {
    if (this.scheduling) {
      // A task finished synchronously while we were starting others: go round again.
      this.rescheduling = true;
      return;
    }
    this.scheduling = true;
    try {
      do {
        this.rescheduling = false;
        this.scheduleOnce();
      } while (this.rescheduling);
    } finally {
      this.scheduling = false;
    }
  }

  private scheduleOnce(): void {
    if (this.paused || this.waiting.size === 0) return;
    const sessions =
      this.waiting.size === 1
        ? [...this.waiting]
        : [...this.waiting].sort((a, b) => b.spec.priority - a.spec.priority || a.seq - b.seq);
    for (const session of sessions) {
      if (!this.executors.canRun()) return;
      const app = this.applications.get(session.spec.application);
      const failure = app ? this.failing.get(app.name) : this.danglingFailure(session);
      if (failure) {
        this.failBinding(session, failure);
        continue;
      }
      // Only Host executors exist here, so Wasm tasks wait for ever, as on a Host-only cluster.
      if (!app || app.spec.shim === Shim.Wasm) continue;
      const sessionLimit = session.spec.maxInstances ?? Number.POSITIVE_INFINITY;
      const appLimit = app.spec.maxInstances ?? Number.POSITIVE_INFINITY;
      while (session.head < session.ready.length) {
        if (this.paused) return;
        if (session.counts.running >= sessionLimit) break;
        if ((this.appRunning.get(app.name) ?? 0) >= appLimit) break;
        const task = session.ready[session.head] as TaskRecord;
        if (task.state !== TaskState.Pending) {
          session.head++;
          continue;
        }
        const executor = this.executors.acquire(session.id, session.spec.resreq);
        if (!executor) return;
        session.head++;
        this.start(task, executor, app.name);
      }
      if (session.head >= session.ready.length) {
        session.ready = [];
        session.head = 0;
        this.waiting.delete(session);
      } else if (session.head > 1024 && session.head * 2 > session.ready.length) {
        session.ready = session.ready.slice(session.head);
        session.head = 0;
      }
    }
  }

  /** A session left without its application (none engine) cannot bind either. */
  private danglingFailure(session: SessionRecord): StartFailure {
    return { message: `application <${session.spec.application}> not found` };
  }

  /**
   * Each executor that tries to bind the session fails; Flame records a 1001
   * event per attempt and, at the retry limit, a 1002 event, then assigns the
   * session no executor again: its tasks stay Pending for ever.
   */
  private failBinding(session: SessionRecord, failure: StartFailure): void {
    const limit = this.options.sessionRetryLimit;
    const returnCode = failure.returnCode ?? DEFAULT_START_FAILURE.returnCode;
    const detail = failure.message ?? DEFAULT_START_FAILURE.message;
    while (session.bindFailures < limit) {
      session.bindFailures++;
      const executor = randomUuid();
      session.events.push(bindFailed(executor, this.options.hostname, returnCode, detail));
    }
    session.events.push(retryLimitReached(session.bindFailures, limit));
    session.bindPaused = true;
    this.waiting.delete(session);
  }

  private start(task: TaskRecord, executor: ExecutorRecord, application: string): void {
    this.appRunning.set(application, (this.appRunning.get(application) ?? 0) + 1);
    task.abort = new AbortController();
    this.running.set(task, { executor, application });
    this.transition(task, TaskState.Running, this.stamp(), taskRunning(), true);
    void this.run(task, executor, application);
  }

  private async run(task: TaskRecord, executor: ExecutorRecord, application: string) {
    const signal = (task.abort as AbortController).signal;
    let output: Uint8Array | undefined;
    let failure: string | undefined;
    let failedOutput: unknown;
    try {
      if (this.options.runningDelayMs > 0) await sleep(this.options.runningDelayMs, signal);
      if (signal.aborted) return;
      const handler =
        this.handlers.get(application) ?? (application === "flmping" ? this.flmping : echo);
      const result = await handler({
        input: task.input,
        commonData: task.session.spec.commonData,
        sessionId: task.session.id,
        taskId: task.id,
        application,
        signal,
      });
      output = toOutput(result);
    } catch (error) {
      failure = errorMessage(error);
      failedOutput = error instanceof TaskFailure ? error.output : undefined;
    }
    // reset()/close() or a lost executor took the task away while it ran: nothing to report.
    if (signal.aborted) return;
    this.release(task, executor, application);
    if (failure !== undefined) {
      try {
        output = toOutput(failedOutput);
      } catch (error) {
        failure = errorMessage(error);
      }
    }
    // The session was deleted or replaced (none engine) while the task ran: nobody to tell.
    if (!task.session.deleted) this.finish(task, output, failure);
    this.schedule();
    this.releaseWhenIdle(task.session);
  }

  /**
   * An executor whose session has nothing to run stays bound to it for the
   * application's `delay_release` seconds (60 by default), then unbinds: the
   * session's next task within that time reuses it. Closing the session
   * unbinds at once.
   */
  private releaseWhenIdle(session: SessionRecord): void {
    session.lastFinish = Date.now();
    if (session.releaseTimer !== undefined) return;
    const app = this.applications.get(session.spec.application);
    const delayMs = Number(app?.spec.delayRelease ?? 0n) * 1000;
    const check = () => {
      if (this.waiting.has(session) || !this.executors.hasFreeBound(session.id)) {
        session.releaseTimer = undefined;
        return;
      }
      const left = session.lastFinish + delayMs - Date.now();
      if (left <= 0) {
        session.releaseTimer = undefined;
        this.executors.releaseSession(session.id);
        return;
      }
      // One timer per session, moved on rather than re-armed after every task.
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        check();
      }, left);
      this.timers.add(timer);
      session.releaseTimer = timer;
    };
    check();
  }

  /** The task's executor and instance slot are free again. */
  private release(task: TaskRecord, executor: ExecutorRecord, application: string): void {
    this.running.delete(task);
    task.abort = undefined;
    this.appRunning.set(application, (this.appRunning.get(application) ?? 1) - 1);
    this.executors.free(executor);
  }

  /** Flame stores the instance's output whether the task succeeded or failed. */
  private finish(task: TaskRecord, output: Uint8Array | undefined, failure: string | undefined) {
    const at = this.stamp();
    task.output = this.bytes(output);
    if (failure === undefined) {
      this.transition(task, TaskState.Succeed, at, taskSucceeded(), true);
    } else {
      this.transition(task, TaskState.Failed, at, taskFailed(failure), true);
    }
  }

  /**
   * Every executor vanishes, as when Flame loses its node: running handlers
   * are aborted and, on sqlite and fs, their tasks go back to Pending with no
   * event and no WatchTask message, to run again on new executors (a watcher
   * that saw Running does not see it again). Flame's `none` engine cannot
   * retry them: they stay Running for ever.
   */
  loseExecutors(): void {
    const lost = [...this.running];
    this.running.clear();
    this.executors.clear();
    for (const [task, { application }] of lost) {
      task.abort?.abort();
      task.abort = undefined;
      this.appRunning.set(application, (this.appRunning.get(application) ?? 1) - 1);
      if (this.storage.kind === "none") continue;
      decrement(task.session.counts, TaskState.Running);
      increment(task.session.counts, TaskState.Pending);
      task.state = TaskState.Pending;
      task.snapshot = [];
      this.makeReady(task);
    }
    this.schedule();
  }
}

interface Launch {
  executor: ExecutorRecord;
  application: string;
}

/** Eviction order: the session that completed first (ties: the one created first). */
const finishedBefore = (a: SessionRecord, b: SessionRecord): boolean => {
  const at = a.completionTime ?? a.creationTime;
  const bt = b.completionTime ?? b.creationTime;
  return at < bt || (at === bt && a.seq < b.seq);
};

export type { ApplicationSpec };
