import {
  type ApplicationSpec,
  type SessionSpec,
  SessionState,
  Shim,
  TaskState,
} from "@flame-ts/core/gen";
import {
  type ApplicationRecord,
  type ApplicationSpecInit,
  checkApplicationSpec,
  DEFAULT_APPLICATIONS,
  newApplicationRecord,
  specFrom,
} from "./applications.js";
import { AsyncQueue } from "./async-queue.js";
import { nowMs } from "./clock.js";
import { errorMessage, internal, invalidConfig, invalidState, notFound } from "./errors.js";
import type { ExecutorPool, ExecutorRecord } from "./executors.js";
import { makeFlmping } from "./flmping.js";
import type { TaskHandler } from "./options.js";
import {
  decrement,
  increment,
  isTerminal,
  type SessionRecord,
  type TaskMessage,
  type TaskRecord,
  toTask,
} from "./records.js";
import { firstDifference, normalise } from "./session-spec.js";

export interface SessionManagerOptions {
  hostname: string;
  pendingDelayMs: number;
  runningDelayMs: number;
  applications: Record<string, ApplicationSpecInit>;
}

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
 * executors that run them. Free of Node built-ins so it can run anywhere.
 */
export class SessionManager {
  readonly applications = new Map<string, ApplicationRecord>();
  readonly sessions = new Map<string, SessionRecord>();
  private readonly handlers = new Map<string, TaskHandler>();
  private readonly flmping: TaskHandler;
  /** Sessions with ready tasks, for the scheduler. */
  private readonly waiting = new Set<SessionRecord>();
  private readonly appRunning = new Map<string, number>();
  private readonly running = new Set<TaskRecord>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private sessionSeq = 0;
  private paused = false;
  private scheduling = false;
  private rescheduling = false;

  constructor(
    private readonly options: SessionManagerOptions,
    readonly executors: ExecutorPool,
  ) {
    this.flmping = makeFlmping(options.hostname);
    this.registerDefaults();
  }

  // --- handlers and knobs -------------------------------------------------

  serve(application: string, handler: TaskHandler): void {
    this.handlers.set(application, handler);
  }

  unserve(application: string): void {
    this.handlers.delete(application);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.schedule();
  }

  /** Forget everything but the handlers; abort running tasks; end every watch. */
  reset(): void {
    this.stopAll();
    this.applications.clear();
    this.sessions.clear();
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
      for (const task of session.tasks.values()) this.endWatchers(task);
    }
    for (const task of this.running) task.abort?.abort();
    this.running.clear();
  }

  private registerDefaults(): void {
    const all = { ...DEFAULT_APPLICATIONS, ...this.options.applications };
    for (const [name, init] of Object.entries(all)) {
      this.applications.set(name, newApplicationRecord(name, specFrom(init)));
    }
  }

  // --- applications --------------------------------------------------------

  /** In-band result: undefined on success, else the failure message. */
  registerApplication(name: string, spec: ApplicationSpec): string | undefined {
    if (name === "") return "application name is empty";
    if (this.applications.has(name)) return `application ${name} already exists`;
    const problem = checkApplicationSpec(spec);
    if (problem) return problem;
    this.applications.set(name, newApplicationRecord(name, spec));
    return undefined;
  }

  updateApplication(name: string, spec: ApplicationSpec): string | undefined {
    const existing = this.applications.get(name);
    if (!existing) return `application ${name} not found`;
    const problem = checkApplicationSpec(spec);
    if (problem) return problem;
    existing.spec = spec;
    this.schedule();
    return undefined;
  }

  unregisterApplication(name: string): string | undefined {
    if (!this.applications.has(name)) return `application ${name} not found`;
    for (const session of this.sessions.values()) {
      if (session.spec.application === name && session.state === SessionState.Open) {
        return `application ${name} is used by open session ${session.id}`;
      }
    }
    this.applications.delete(name);
    return undefined;
  }

  getApplication(name: string): ApplicationRecord {
    const app = this.applications.get(name);
    if (!app) throw notFound(`application ${name} not found`);
    return app;
  }

  // --- sessions -------------------------------------------------------------

  getSession(id: string): SessionRecord {
    const session = this.sessions.get(id);
    if (!session) throw notFound(`session ${id} not found`);
    return session;
  }

  createSession(id: string, spec: SessionSpec | undefined): SessionRecord {
    if (!spec) throw invalidConfig("session spec is required");
    if (id === "") throw invalidConfig("session id is empty");
    // Flame's storage rejects both with a constraint error, which reaches the wire as INTERNAL.
    if (!this.applications.has(spec.application)) {
      throw internal(`application ${spec.application} not found`);
    }
    if (this.sessions.has(id)) throw internal(`session ${id} already exists`);
    const session: SessionRecord = {
      id,
      seq: this.sessionSeq++,
      spec: normalise(spec),
      state: SessionState.Open,
      creationTime: nowMs(),
      completionTime: undefined,
      events: [],
      tasks: new Map(),
      nextTaskId: 1,
      counts: { pending: 0, running: 0, succeed: 0, failed: 0, cancelled: 0 },
      ready: [],
      head: 0,
      deleted: false,
    };
    this.sessions.set(id, session);
    return session;
  }

  openSession(id: string, spec: SessionSpec | undefined): SessionRecord {
    const existing = this.sessions.get(id);
    if (!spec) {
      if (!existing) throw notFound(`session ${id} not found`);
    } else if (!existing) {
      return this.createSession(id, spec);
    }
    const session = existing as SessionRecord;
    if (session.state !== SessionState.Open) throw invalidState(`session ${id} is not open`);
    if (spec) {
      const difference = firstDifference(session.spec, normalise(spec));
      if (difference) throw invalidConfig(`session ${id} spec mismatch: ${difference}`);
    }
    return session;
  }

  closeSession(id: string): SessionRecord {
    const session = this.getSession(id);
    if (session.state === SessionState.Closed) return session;
    // Flame's storage refuses this, so it reaches the wire as INTERNAL, not INVALID_ARGUMENT.
    if (session.counts.running > 0) {
      throw internal("Cannot close session with running tasks");
    }
    this.cancelPending(session);
    session.state = SessionState.Closed;
    session.completionTime = nowMs();
    this.executors.releaseSession(session.id);
    return session;
  }

  /**
   * Removes a closed session whose tasks are all terminal; NOT_FOUND if unknown.
   * Both refusals are Flame's storage errors, so they reach the wire as INTERNAL.
   */
  deleteSession(id: string): SessionRecord {
    const session = this.getSession(id);
    if (session.state !== SessionState.Closed) throw internal("Cannot delete open session");
    // Close cancels pending tasks and refuses while any runs, so this is a safeguard.
    if (session.counts.pending > 0 || session.counts.running > 0) {
      throw internal("Cannot delete session with non-terminal tasks");
    }
    this.sessions.delete(id);
    session.deleted = true;
    for (const task of session.tasks.values()) this.endWatchers(task);
    return session;
  }

  private cancelPending(session: SessionRecord): void {
    const now = nowMs();
    for (const task of session.tasks.values()) {
      if (task.state !== TaskState.Pending) continue;
      task.events.push({ code: TaskState.Cancelled, message: "session closed", creationTime: now });
      this.transition(task, TaskState.Cancelled, now);
    }
    session.ready = [];
    session.head = 0;
    this.waiting.delete(session);
  }

  // --- tasks ----------------------------------------------------------------

  createTask(sessionId: string, input: Uint8Array | undefined): TaskRecord {
    const session = this.sessions.get(sessionId);
    // Flame reports both as INTERNAL: the task cannot be stored against the session.
    if (!session) throw internal(`session ${sessionId} not found`);
    if (session.state !== SessionState.Open) throw internal(`session ${sessionId} is not open`);
    const id = String(session.nextTaskId++);
    const task: TaskRecord = {
      id,
      session,
      input,
      output: undefined,
      state: TaskState.Pending,
      creationTime: nowMs(),
      completionTime: undefined,
      events: [],
      watchers: undefined,
      abort: undefined,
    };
    session.tasks.set(id, task);
    session.counts.pending++;
    if (this.options.pendingDelayMs > 0) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.makeReady(task);
      }, this.options.pendingDelayMs);
      this.timers.add(timer);
    } else {
      this.makeReady(task);
    }
    return task;
  }

  /** Finds a task; an id that is not a number is INVALID_ARGUMENT, as in Flame. */
  findTask(sessionId: string, taskId: string): TaskRecord | undefined {
    if (!/^\d+$/.test(taskId)) throw invalidConfig(`invalid task id <${taskId}>`);
    return this.sessions.get(sessionId)?.tasks.get(String(Number(taskId)));
  }

  getTask(sessionId: string, taskId: string): TaskRecord {
    const task = this.findTask(sessionId, taskId);
    if (!task) throw notFound(`task ${sessionId}/${taskId} not found`);
    return task;
  }

  /** A queue of this task's later changes; the caller must unwatch. */
  watch(task: TaskRecord): AsyncQueue<TaskMessage> {
    const queue = new AsyncQueue<TaskMessage>();
    if (!task.watchers) task.watchers = new Set();
    task.watchers.add(queue);
    return queue;
  }

  unwatch(task: TaskRecord, queue: AsyncQueue<TaskMessage>): void {
    task.watchers?.delete(queue);
    queue.end();
  }

  private endWatchers(task: TaskRecord): void {
    if (!task.watchers) return;
    for (const queue of task.watchers) queue.end();
    task.watchers.clear();
  }

  private makeReady(task: TaskRecord): void {
    const session = task.session;
    if (task.state !== TaskState.Pending || session.deleted) return;
    session.ready.push(task);
    this.waiting.add(session);
    this.schedule();
  }

  private transition(task: TaskRecord, state: TaskState, at: bigint): void {
    const counts = task.session.counts;
    decrement(counts, task.state);
    increment(counts, state);
    task.state = state;
    if (isTerminal(state)) task.completionTime = at;
    if (task.watchers && task.watchers.size > 0) {
      const message = toTask(task);
      for (const queue of task.watchers) queue.push(message);
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
      const app = this.applications.get(session.spec.application);
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

  private start(task: TaskRecord, executor: ExecutorRecord, application: string): void {
    this.appRunning.set(application, (this.appRunning.get(application) ?? 0) + 1);
    task.abort = new AbortController();
    this.running.add(task);
    this.transition(task, TaskState.Running, nowMs());
    void this.run(task, executor, application);
  }

  private async run(task: TaskRecord, executor: ExecutorRecord, application: string) {
    const signal = (task.abort as AbortController).signal;
    let output: Uint8Array | undefined;
    let failure: string | undefined;
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
    }
    // reset()/close() took the task away while it ran: nothing to report.
    if (signal.aborted || task.session.deleted) return;
    this.finish(task, executor, application, output, failure);
  }

  private finish(
    task: TaskRecord,
    executor: ExecutorRecord,
    application: string,
    output: Uint8Array | undefined,
    failure: string | undefined,
  ): void {
    this.running.delete(task);
    task.abort = undefined;
    this.appRunning.set(application, (this.appRunning.get(application) ?? 1) - 1);
    const now = nowMs();
    if (failure === undefined) {
      task.output = output;
      this.transition(task, TaskState.Succeed, now);
    } else {
      task.events.push({ code: TaskState.Failed, message: failure, creationTime: now });
      this.transition(task, TaskState.Failed, now);
    }
    this.executors.free(executor);
    this.schedule();
    // Nothing left for this session right now: give its executors back to the node.
    const session = task.session;
    if (!this.waiting.has(session) && this.executors.hasFreeBound(session.id)) {
      this.executors.releaseSession(session.id);
    }
  }
}
