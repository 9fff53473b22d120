import { Code, ConnectError } from "@connectrpc/connect";
import type { Observer, TeardownLogic, Unsubscribable } from "rxjs";
import { FlameError, toFlameError } from "../errors.js";
import type { Task as TaskMessage } from "../gen/flame/v1/types_pb.js";
import { TaskState } from "../gen/flame/v1/types_pb.js";
import { backoffDelay } from "../retry.js";
import type { Task } from "../task.js";
import { toTask } from "../task.js";
import type { WatchTaskOptions } from "../watch-task.js";
import { abortError, defaultMaxResumes, followTask, resumable } from "./follow-task.js";
import type { Rpc } from "./rpc.js";
import { closedError } from "./rpc.js";
import type { Scope } from "./scope.js";
import { advances, noProgress, progressOf, terminalProgress } from "./task-gate.js";

/** How a Connection serves `watchTask` (ConnectionOptions `watch`). */
export interface WatchOptions {
  /**
   * WatchTask streams held open at once by the connection's `watchTask`
   * (and `watchSession`) watches (default 64). Each watch within the budget
   * has a stream of its own, the lowest latency; past it, a session's
   * further watches are served by one ListTask poll per session, where a
   * watch costs a small record instead of an HTTP/2 stream (about 20 KB
   * each on Node). Keep it under the server's concurrent-stream limit
   * (hyper's default is 200, grpc-go's 100) so unary calls still get
   * through; over HTTP/1.1 (browsers, gRPC-Web) keep it under the six
   * connections per origin, e.g. 4. `0` polls every watch.
   */
  maxStreams?: number;
  /** Pause between ListTask polls while something changes (default 250 ms). */
  pollIntervalMs?: number;
  /** The pause doubles while nothing changes, up to this (default 2000 ms). */
  maxPollIntervalMs?: number;
}

/**
 * A poll waits at least this long per row its last ListTask returned, so a
 * session's poll reads at most 10,000 rows a second however big the session
 * grows: what polling costs the server stays in proportion to the time
 * watched, not to the square of the session's size.
 */
export const pollMsPerRow = 0.1;

export const defaultWatchOptions: Readonly<Required<WatchOptions>> = {
  maxStreams: 64,
  pollIntervalMs: 250,
  maxPollIntervalMs: 2000,
};

// One hub per Connection (keyed by its Rpc, which Connection and Sessions share).
const hubs = new WeakMap<Rpc, WatchHub>();

/** The connection's hub, made with its `watch` options on first use. */
export function watchHubOf(rpc: Rpc): WatchHub {
  let hub = hubs.get(rpc);
  if (hub === undefined) {
    hub = new WatchHub(rpc, rpc.watchOptions);
    hubs.set(rpc, hub);
  }
  return hub;
}

/**
 * Serves a connection's `watchTask` subscriptions within a stream budget.
 *
 * While fewer than `maxStreams` dedicated watches run, a new subscription
 * gets its own WatchTask stream (`followTask`: GetTask + WatchTask, resumed
 * with backoff). Past the budget it joins its session's poll: one ListTask
 * loop per session (and headers) that hands each row to the subscribers of
 * that task. A subscription stays on the path it started on: when a
 * dedicated stream frees up, polled watches are not moved to it (the next
 * new subscription takes it). Each subscription has its own de-duplication
 * state on either path, so none sees a state twice or a terminal state
 * more than once, across resumes and polls.
 */
export class WatchHub {
  readonly maxStreams: number;
  readonly baseInterval: number;
  readonly maxInterval: number;
  private streams = 0;
  private readonly polls = new Map<string, SessionPoll>();

  constructor(
    readonly rpc: Rpc,
    options: WatchOptions = {},
  ) {
    this.maxStreams = Math.max(0, Math.floor(options.maxStreams ?? defaultWatchOptions.maxStreams));
    this.baseInterval = Math.max(1, options.pollIntervalMs ?? defaultWatchOptions.pollIntervalMs);
    this.maxInterval = Math.max(
      this.baseInterval,
      options.maxPollIntervalMs ?? defaultWatchOptions.maxPollIntervalMs,
    );
  }

  /** Takes a dedicated-stream slot if one is free; `release()` gives it back. */
  tryAcquire(): boolean {
    if (this.streams >= this.maxStreams) return false;
    this.streams++;
    return true;
  }

  release(): void {
    this.streams--;
  }

  /** The subscribe function of `watchTask`'s Observable. */
  watch(
    sessionId: string,
    taskId: string,
    options: WatchTaskOptions | undefined,
    subscriber: Observer<Task>,
  ): TeardownLogic {
    if (this.tryAcquire()) return this.dedicated(sessionId, taskId, options, subscriber);
    if (this.rpc.closed) {
      subscriber.error(closedError("WatchTask"));
      return;
    }
    const headers = options?.headers;
    const key = headers === undefined ? sessionId : `${sessionId}\n${headersKey(headers)}`;
    const existing = this.polls.get(key);
    const poll = existing ?? new SessionPoll(this, key, sessionId, headers);
    if (existing === undefined) this.polls.set(key, poll);
    const watch = poll.add(taskId, subscriber, options);
    // Started after the first watch joined, so its first round covers it.
    if (existing === undefined) poll.start();
    return watch;
  }

  /** A watch with a WatchTask stream of its own; its slot is freed as soon as it ends. */
  private dedicated(
    sessionId: string,
    taskId: string,
    options: WatchTaskOptions | undefined,
    subscriber: Observer<Task>,
  ): TeardownLogic {
    const scope = this.rpc.scope(options);
    let held = true;
    const free = () => {
      if (held) this.streams--;
      held = false;
    };
    followTask(this.rpc, sessionId, taskId, (task) => subscriber.next(task), {
      scope,
      headers: options?.headers,
      maxResumes: options?.maxResumes,
    }).then(
      () => {
        free();
        subscriber.complete();
      },
      (err: unknown) => {
        free();
        subscriber.error(err);
      },
    );
    return () => {
      free();
      scope.dispose();
    };
  }

  /** @internal A poll with no subscribers left. */
  forget(poll: SessionPoll): void {
    if (this.polls.get(poll.key) === poll) this.polls.delete(poll.key);
  }
}

/**
 * The polled watches of one session: one ListTask at a time, every
 * `pollIntervalMs` while something changes, the pause doubling while
 * nothing does (up to `maxPollIntervalMs`), at once when a watch joins (it
 * wants its current state), with capped backoff after a failure. It stops
 * (aborting a ListTask in flight) when its last watch leaves.
 */
class SessionPoll {
  /** Watches by task id; several subscriptions to one task are chained. */
  private readonly watches = new Map<string, PolledWatch>();
  private readonly scope: Scope;
  private size = 0;
  /** Number of the latest round started; a watch is covered by rounds after the one it joined in. */
  private round = 0;
  private joined = false;
  private changed = false;
  private stopped = false;
  private wakeUp: (() => void) | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly hub: WatchHub,
    readonly key: string,
    readonly sessionId: string,
    readonly headers: HeadersInit | undefined,
  ) {
    this.scope = hub.rpc.root.child();
    // Closing the connection ends a pause at once.
    this.scope.signal.addEventListener("abort", this, { once: true });
  }

  /** The scope's abort (the connection closed). */
  handleEvent(): void {
    this.wake();
  }

  start(): void {
    this.loop().catch((err: unknown) => this.failAll(toFlameError(err, "ListTask")));
  }

  add(
    taskId: string,
    subscriber: Observer<Task>,
    options: WatchTaskOptions | undefined,
  ): PolledWatch {
    const watch = new PolledWatch(
      this,
      taskId,
      subscriber,
      options?.maxResumes ?? defaultMaxResumes,
      this.round,
    );
    watch.sibling = this.watches.get(taskId);
    this.watches.set(taskId, watch);
    this.size++;
    this.joined = true;
    this.wake();
    watch.arm(options?.signal, options?.timeoutMs);
    return watch;
  }

  remove(watch: PolledWatch): void {
    const head = this.watches.get(watch.taskId);
    if (head === watch) {
      if (watch.sibling === undefined) this.watches.delete(watch.taskId);
      else this.watches.set(watch.taskId, watch.sibling);
    } else {
      let w = head;
      while (w !== undefined && w.sibling !== watch) w = w.sibling;
      if (w !== undefined) w.sibling = watch.sibling;
    }
    if (--this.size === 0) this.stop();
  }

  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.hub.forget(this);
    this.scope.signal.removeEventListener("abort", this);
    this.scope.dispose();
    this.wake();
  }

  private wake(): void {
    const wakeUp = this.wakeUp;
    if (wakeUp === undefined) return;
    this.wakeUp = undefined;
    clearTimeout(this.timer);
    wakeUp();
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakeUp = resolve;
      this.timer = setTimeout(wakeFrom, ms, this);
    });
  }

  private async loop(): Promise<void> {
    const { rpc } = this.hub;
    const signal = this.scope.signal;
    let interval = this.hub.baseInterval;
    let failures = 0;
    while (!this.stopped) {
      if (signal.aborted) {
        this.failAll(abortError(signal, "WatchTask"));
        return;
      }
      const round = ++this.round;
      this.joined = false;
      this.changed = false;
      // The connection's deadline bounds each poll here, not on the wire.
      const attempt = this.scope.child(undefined, rpc.timeoutMs);
      let rowCount = 0;
      try {
        const rows = rpc.client.listTask(
          { sessionId: this.sessionId },
          { signal: attempt.signal, headers: this.headers },
        );
        for await (const row of rows) {
          rowCount++;
          this.offer(row, round);
        }
        attempt.done();
        failures = 0;
        this.checkMissing(round);
      } catch (err) {
        attempt.dispose();
        if (this.stopped) return;
        if (signal.aborted) continue;
        if (!resumable(err, false)) {
          this.failAll(toFlameError(err, "ListTask"));
          return;
        }
        failures++;
        rpc.logger.warn("watch poll failed; trying again", {
          sessionId: this.sessionId,
          error: String((err as Error)?.message ?? err),
        });
        this.giveUp(failures, err);
      }
      if (this.stopped) return;
      const floor = rowCount * pollMsPerRow;
      // Newcomers want their current state, unless the session is so big
      // that a poll at once would pass the row budget.
      if (failures === 0 && this.joined && floor <= this.hub.baseInterval) continue;
      let delay: number;
      if (failures > 0) {
        delay = backoffDelay(failures - 1, rpc.retry ?? undefined);
      } else {
        interval = this.changed
          ? this.hub.baseInterval
          : Math.min(this.hub.maxInterval, interval * 2);
        delay = interval;
      }
      // A newcomer's wake-up does not cut the row budget's wait short.
      const notBefore = Date.now() + floor;
      await this.pause(delay);
      while (!this.stopped && !signal.aborted && Date.now() < notBefore) {
        await this.pause(notBefore - Date.now());
      }
    }
  }

  /** Hands one ListTask row to the watches of its task. */
  private offer(row: TaskMessage, round: number): void {
    const id = row.metadata?.id;
    if (id === undefined) return;
    let watch = this.watches.get(id);
    if (watch === undefined) return;
    const status = row.status;
    const progress = progressOf(status?.state ?? TaskState.Pending, status?.events.length ?? 0);
    let task: Task | undefined;
    for (; watch !== undefined; watch = watch.sibling) {
      if (watch.gone) continue;
      watch.seen = round;
      if (!advances(watch.progress, progress)) continue;
      watch.progress = progress;
      this.changed = true;
      task ??= toTask(row, { sessionId: this.sessionId });
      watch.deliver(task);
    }
  }

  /**
   * A watch the round should have covered but did not list: its task is
   * unknown (or gone). GetTask says which, with the same NotFound error a
   * dedicated watch gives.
   */
  private checkMissing(round: number): void {
    for (const head of this.watches.values()) {
      for (let w: PolledWatch | undefined = head; w !== undefined; w = w.sibling) {
        if (!w.gone && !w.confirming && w.joinedRound < round && w.seen !== round) {
          this.confirm(w);
        }
      }
    }
  }

  private confirm(watch: PolledWatch): void {
    const { rpc } = this.hub;
    watch.confirming = true;
    const read = this.scope.child(undefined, rpc.timeoutMs);
    rpc.client
      .getTask(
        { sessionId: this.sessionId, taskId: watch.taskId },
        { signal: read.signal, headers: this.headers },
      )
      .finally(() => read.done())
      .then(
        (message) => {
          watch.confirming = false;
          if (!watch.gone) {
            watch.offer(toTask(message, { id: watch.taskId, sessionId: this.sessionId }));
          }
        },
        (err: unknown) => {
          watch.confirming = false;
          // Transient failures: the next round looks again.
          if (!watch.gone && !this.scope.signal.aborted && !resumable(err)) {
            watch.fail(toFlameError(err, "GetTask"));
          }
        },
      );
  }

  /** Fails the watches whose resume limit `failures` rounds in a row have passed. */
  private giveUp(failures: number, cause: unknown): void {
    for (const watch of this.all()) {
      if (failures > watch.maxResumes) {
        watch.fail(
          new FlameError(
            `WatchTask gave up on task ${this.sessionId}/${watch.taskId} after ${failures} attempts without progress`,
            { kind: "unavailable", method: "WatchTask", cause },
          ),
        );
      }
    }
  }

  private failAll(error: FlameError): void {
    for (const watch of this.all()) watch.fail(error);
  }

  private all(): PolledWatch[] {
    const all: PolledWatch[] = [];
    for (const head of this.watches.values()) {
      for (let w: PolledWatch | undefined = head; w !== undefined; w = w.sibling) all.push(w);
    }
    return all;
  }
}

/**
 * One polled subscription: a few fields, no closures, no AbortController.
 * It is its own teardown (`unsubscribe`) and its own "abort" listener
 * (`handleEvent`) for a caller's signal.
 */
class PolledWatch implements Unsubscribable {
  progress = noProgress;
  sibling: PolledWatch | undefined;
  /** The last round that listed this task. */
  seen = 0;
  gone = false;
  confirming = false;
  private signal: AbortSignal | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly poll: SessionPoll,
    readonly taskId: string,
    private readonly subscriber: Observer<Task>,
    readonly maxResumes: number,
    readonly joinedRound: number,
  ) {}

  /** Links the caller's signal and deadline (only when given). */
  arm(signal: AbortSignal | undefined, timeoutMs: number | undefined): void {
    if (signal !== undefined) {
      if (signal.aborted) {
        this.fail(toFlameError(signal.reason, "WatchTask"));
        return;
      }
      this.signal = signal;
      signal.addEventListener("abort", this, { once: true });
    }
    if (timeoutMs !== undefined && timeoutMs > 0) this.timer = setTimeout(timeOut, timeoutMs, this);
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    this.fail(toFlameError(this.signal?.reason, "WatchTask"));
  }

  /** Emits `task` if it is newer than what this subscriber has seen. */
  offer(task: Task): void {
    const progress = progressOf(task.state, task.events.length);
    if (!advances(this.progress, progress)) return;
    this.progress = progress;
    this.deliver(task);
  }

  /** Emits a state already found newer; after a terminal one, completes. */
  deliver(task: Task): void {
    if (this.progress < terminalProgress) {
      this.subscriber.next(task);
      return;
    }
    this.detach();
    this.subscriber.next(task);
    this.subscriber.complete();
  }

  fail(error: unknown): void {
    if (this.gone) return;
    this.detach();
    this.subscriber.error(error);
  }

  unsubscribe(): void {
    if (!this.gone) this.detach();
  }

  private detach(): void {
    this.gone = true;
    if (this.signal !== undefined) this.signal.removeEventListener("abort", this);
    this.signal = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.poll.remove(this);
  }
}

function wakeFrom(poll: { handleEvent(): void }): void {
  poll.handleEvent();
}

function timeOut(watch: PolledWatch): void {
  watch.fail(
    toFlameError(new ConnectError("the operation timed out", Code.DeadlineExceeded), "WatchTask"),
  );
}

/** Watches with other headers (auth) get a poll of their own. */
function headersKey(headers: HeadersInit): string {
  return JSON.stringify([...new Headers(headers)]);
}
