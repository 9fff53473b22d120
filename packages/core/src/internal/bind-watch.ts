import { FlameError } from "../errors.js";
import type { Session as SessionMessage } from "../gen/flame/v1/types_pb.js";
import { TaskState } from "../gen/flame/v1/types_pb.js";
import type { Task } from "../task.js";
import type { Rpc } from "./rpc.js";

/** Flame's session event: an executor failed to bind the session (start its application). */
export const sessionBindFailed = 1001;
/** Flame's session event: binding failed too often; no new executor will be given to the session. */
export const sessionRetryLimitReached = 1002;

/** Default pause between looks at a session whose tasks are awaited in Pending. */
export const defaultBindCheckMs = 5_000;

/**
 * Watches the sessions whose tasks are awaited while Pending, for Flame's
 * sign that their application cannot start.
 *
 * When an application's command cannot start, Flame records session events
 * 1001 (bind failed) on each attempt and, after `retry_limits` attempts
 * (default 5), 1002: from then on the session gets no new executor and its
 * tasks stay Pending for ever. Only GetSession and ListSession show those
 * events; the tasks themselves say nothing. So while any task of a session
 * is awaited in Pending, the session is read every `intervalMs`; when it
 * reports 1002 and runs nothing, every wait on it fails with kind
 * "bind-failed" and Flame's messages. One timer and one GetSession per
 * session, however many tasks wait.
 */
export class BindWatch {
  private readonly sessions = new Map<string, SessionWatch>();

  constructor(
    readonly rpc: Rpc,
    readonly intervalMs: number,
  ) {}

  /** Adds a wait on a Pending task of its session; the returned function ends it. */
  wait(wait: PendingWait): () => void {
    let watch = this.sessions.get(wait.sessionId);
    if (watch === undefined) {
      watch = new SessionWatch(this, wait.sessionId);
      this.sessions.set(wait.sessionId, watch);
    }
    return watch.add(wait);
  }

  /** @internal A session with no waits left. */
  forget(watch: SessionWatch): void {
    if (this.sessions.get(watch.sessionId) === watch) this.sessions.delete(watch.sessionId);
  }
}

class SessionWatch {
  private readonly waits = new Set<PendingWait>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private checking = false;
  private bindFailures = 0;

  constructor(
    private readonly owner: BindWatch,
    readonly sessionId: string,
  ) {}

  add(wait: PendingWait): () => void {
    this.waits.add(wait);
    this.schedule();
    return () => this.remove(wait);
  }

  private remove(wait: PendingWait): void {
    if (!this.waits.delete(wait) || this.waits.size > 0) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.owner.forget(this);
  }

  /** One look at a time, `intervalMs` after the last. */
  private schedule(): void {
    if (this.timer !== undefined || this.checking || this.owner.rpc.closed) return;
    this.timer = setTimeout(check, this.owner.intervalMs, this);
  }

  /** Reads the session once; fails the waits or looks again later. */
  async check(): Promise<void> {
    this.timer = undefined;
    this.checking = true;
    const { rpc } = this.owner;
    // The headers (credentials) of one of the waits.
    const headers = this.waits.values().next().value?.headers;
    let session: SessionMessage | undefined;
    try {
      session = await rpc.unary(
        "GetSession",
        (o) => rpc.client.getSession({ sessionId: this.sessionId }, o),
        { headers },
        true,
      );
    } catch (err) {
      // The waits themselves report a session that is gone; a failed look
      // is tried again at the next tick.
      rpc.logger.debug("bind check failed", { sessionId: this.sessionId, error: String(err) });
    } finally {
      this.checking = false;
    }
    if (this.waits.size === 0) return;
    const error = session === undefined ? undefined : this.stuck(session);
    if (error === undefined) {
      this.schedule();
      return;
    }
    // Every wait fails; waits that come later start afresh.
    this.owner.forget(this);
    const failed = [...this.waits];
    this.waits.clear();
    for (const wait of failed) wait.onFailure(error);
  }

  /** The error for a session that cannot start its application, if it is one. */
  private stuck(session: SessionMessage): FlameError | undefined {
    const events = session.status?.events ?? [];
    const failed = events.filter((e) => e.code === sessionBindFailed);
    const gaveUp = events.find((e) => e.code === sessionRetryLimitReached);
    if (failed.length > this.bindFailures) {
      this.bindFailures = failed.length;
      this.owner.rpc.logger.warn("an executor failed to bind the session", {
        sessionId: this.sessionId,
        message: failed.at(-1)?.message,
      });
    }
    // Executors already bound keep running tasks after 1002: only a session
    // that runs nothing is stuck.
    if (gaveUp === undefined || (session.status?.running ?? 0) > 0) return undefined;
    const said = [failed.at(-1)?.message, gaveUp.message].filter(Boolean).join("; ");
    const application = session.spec?.application ?? "";
    return new FlameError(
      `session ${this.sessionId} cannot start its application ${application}: ${said}`,
      { kind: "bind-failed", method: "GetSession", serverMessage: said },
    );
  }
}

function check(watch: SessionWatch): void {
  void watch.check();
}

// One per Connection (keyed by its Rpc, which Connection and Sessions share);
// null where ConnectionOptions `bindCheckMs` is 0.
const watches = new WeakMap<Rpc, BindWatch | null>();

/**
 * Follows one awaited task for the bind watch: `see` each state; while it
 * is Pending the task waits on its session, and `onFailure` gets the error
 * if the session turns out unable to start its application. `stop()` when
 * the wait is over.
 */
export class PendingWait {
  private end: (() => void) | undefined;
  private readonly watch: BindWatch | undefined;

  constructor(
    rpc: Rpc,
    readonly sessionId: string,
    readonly headers: HeadersInit | undefined,
    readonly onFailure: (error: FlameError) => void,
  ) {
    let watch = watches.get(rpc);
    if (watch === undefined) {
      const ms = rpc.bindCheckMs ?? defaultBindCheckMs;
      watch = ms > 0 ? new BindWatch(rpc, ms) : null;
      watches.set(rpc, watch);
    }
    this.watch = watch ?? undefined;
  }

  see(task: Task): void {
    if (task.state !== TaskState.Pending) this.stop();
    else if (this.end === undefined && this.watch !== undefined) {
      this.end = this.watch.wait(this);
    }
  }

  stop(): void {
    this.end?.();
    this.end = undefined;
  }
}
