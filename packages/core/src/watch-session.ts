import { Observable } from "rxjs";
import type { CallOptions } from "./call-options.js";
import type { Channel } from "./channel.js";
import { SessionState } from "./gen/flame/v1/types_pb.js";
import { followTask } from "./internal/follow-task.js";
import type { Rpc } from "./internal/rpc.js";
import type { Scope } from "./internal/scope.js";
import { TaskGate } from "./internal/task-gate.js";
import { watchHubOf } from "./internal/watch-hub.js";
import { sleep } from "./retry.js";
import type { Task } from "./task.js";
import { readTasks, type SessionRef, sessionIdOf } from "./tasks.js";

export interface WatchSessionOptions extends CallOptions {
  /**
   * Streams held open at once, the ListTask poll included (default 4).
   * Browsers hold six HTTP/1.1 connections per origin; a watch for every
   * task would starve every other call.
   */
  maxStreams?: number;
  /** Pause between ListTask polls while something changes (default 500 ms). */
  pollIntervalMs?: number;
  /** The pause doubles while nothing changes, up to this (default 5000 ms). */
  maxPollIntervalMs?: number;
  /**
   * Complete once the session is closed and every task is terminal
   * (default true). With `false` the Observable runs until unsubscribed.
   */
  untilClosed?: boolean;
}

/**
 * One cold Observable of every task change in a session, within a stream
 * budget.
 *
 * How: ListTask (repeated, with backoff while nothing changes) finds the
 * tasks and their states; up to `maxStreams - 1` of the oldest unfinished
 * tasks are followed with WatchTask (resumed as `watchTask` is) so their
 * changes arrive at once, and the rest are seen at the next poll. Those
 * watches also count against the connection's stream budget
 * (ConnectionOptions `watch.maxStreams`, shared with `watchTask`): when it
 * is spent, polling covers the tasks. Each
 * task's current state is emitted once, then each change; states only move
 * forward (Pending < Running < terminal), so a state seen by both a watch
 * and a poll is emitted once, and a terminal state exactly once. With
 * `untilClosed` (the default) it completes when GetSession reports the
 * session closed and every task is terminal.
 */
export function watchSession(
  channel: Channel,
  session: SessionRef<unknown, unknown>,
  options?: WatchSessionOptions,
): Observable<Task> {
  const { rpc } = channel;
  const sessionId = sessionIdOf(session);
  return new Observable<Task>((subscriber) => {
    const scope = rpc.scope(options);
    run(rpc, sessionId, options ?? {}, scope, (task) => subscriber.next(task)).then(
      () => subscriber.complete(),
      (err) => subscriber.error(err),
    );
    return () => scope.dispose();
  });
}

async function run(
  rpc: Rpc,
  sessionId: string,
  options: WatchSessionOptions,
  scope: Scope,
  emit: (task: Task) => void,
): Promise<void> {
  const signal = scope.signal;
  const hub = watchHubOf(rpc);
  const maxWatches = Math.max(0, Math.floor(options.maxStreams ?? 4) - 1);
  const baseInterval = Math.max(1, options.pollIntervalMs ?? 500);
  const maxInterval = Math.max(baseInterval, options.maxPollIntervalMs ?? 5000);
  const untilClosed = options.untilClosed ?? true;
  const call = { scope, headers: options.headers };
  const gates = new Map<string, TaskGate>();
  const watching = new Set<string>();
  let changed = false;
  let wake: (() => void) | undefined;

  const gateOf = (id: string) => {
    let gate = gates.get(id);
    if (gate === undefined) {
      gate = new TaskGate((task) => {
        changed = true;
        emit(task);
      });
      gates.set(id, gate);
    }
    return gate;
  };

  let interval = baseInterval;
  for (;;) {
    changed = false;
    // Read the session first: once it is closed, the list that follows is final.
    let closed = false;
    if (untilClosed) {
      const session = await rpc.unary(
        "GetSession",
        (o) => rpc.client.getSession({ sessionId }, o),
        call,
        true,
      );
      closed = session.status?.state === SessionState.Closed;
    }
    const tasks = await readTasks(rpc, sessionId, call);
    for (const task of tasks) gateOf(task.id).offer(task);

    const open = tasks.filter((t) => !gateOf(t.id).terminal);
    if (closed && open.length === 0) return;

    // Oldest unfinished tasks first: they are the likeliest to finish next.
    open.sort((a, b) => Number(a.id) - Number(b.id));
    for (const task of open) {
      if (watching.size >= maxWatches) break;
      if (watching.has(task.id)) continue;
      if (!hub.tryAcquire()) break;
      watching.add(task.id);
      const gate = gateOf(task.id);
      const watch = scope.child();
      followTask(rpc, sessionId, task.id, (t) => gate.offer(t), {
        scope: watch,
        headers: options.headers,
        initial: gate.last,
      })
        .catch((err) => {
          // Polling still covers this task.
          if (!signal.aborted)
            rpc.logger.warn("watchSession: watch failed", { task: task.id, err });
        })
        .finally(() => {
          hub.release();
          watch.done();
          watching.delete(task.id);
          wake?.();
        });
    }

    interval = changed ? baseInterval : Math.min(maxInterval, interval * 2);
    await new Promise<void>((resolve, reject) => {
      wake = resolve;
      sleep(interval, signal).then(resolve, reject);
    });
    wake = undefined;
  }
}
