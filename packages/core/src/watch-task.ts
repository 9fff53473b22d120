import { Observable } from "rxjs";
import type { CallOptions } from "./call-options.js";
import type { Channel } from "./channel.js";
import { PendingWait } from "./internal/bind-watch.js";
import { watchHubOf } from "./internal/watch-hub.js";
import type { Task } from "./task.js";
import { type SessionRef, sessionIdOf } from "./tasks.js";

export type { WatchOptions } from "./internal/watch-hub.js";

export interface WatchTaskOptions extends CallOptions {
  /**
   * Consecutive resume attempts that make no progress before the watch
   * fails with kind "unavailable" (default 10). For a polled watch, the
   * failed ListTask polls in a row.
   */
  maxResumes?: number;
}

/**
 * A cold Observable of one task: its current state first, then every
 * change, completing after a terminal state.
 *
 * It smooths over three awkward parts of Flame's WatchTask:
 * - WatchTask does not send the current state, so GetTask supplies it
 *   (asked while the watch opens, so no change falls in between);
 * - an unknown task makes WatchTask end quietly; GetTask turns that into a
 *   FlameError of kind "not-found";
 * - a stream that ends or breaks before a terminal state (server restart,
 *   network loss) is resumed: GetTask, then watch again, with capped backoff
 *   and a limit. States are de-duplicated, so nothing is emitted twice and
 *   the terminal state exactly once.
 *
 * Within the connection's stream budget (ConnectionOptions `watch.maxStreams`,
 * default 64) each subscription has a WatchTask stream of its own, and
 * unsubscribing cancels it at the server at once (breaking out of a Connect
 * stream would not). Past the budget a subscription is served by its
 * session's shared ListTask poll (see internal/watch-hub.ts) with the same
 * guarantees; unsubscribing removes it at once, and the poll stops (its
 * ListTask in flight aborted) when no watch of the session is left.
 *
 * While the task is Pending, its session is also read every `bindCheckMs`
 * (ConnectionOptions): when Flame reports that it cannot start the
 * session's application, the watch errors with kind "bind-failed".
 *
 * On real Flame the states a watch brings carry no events (WatchTask and
 * ListTask send none, or a stale copy); `getTask` has a failed task's
 * message, and `run()` reads it for you.
 */
export function watchTask(
  channel: Channel,
  session: SessionRef<unknown, unknown>,
  taskId: string,
  options?: WatchTaskOptions,
): Observable<Task> {
  const { rpc } = channel;
  const sessionId = sessionIdOf(session);
  return new Observable<Task>((subscriber) => {
    const pending = new PendingWait(rpc, sessionId, options?.headers, (err) =>
      subscriber.error(err),
    );
    // Erroring, completing or unsubscribing runs both finalizers.
    subscriber.add(() => pending.stop());
    return watchHubOf(rpc).watch(sessionId, taskId, options, {
      next: (task) => {
        if (subscriber.closed) return;
        pending.see(task);
        subscriber.next(task);
      },
      error: (err) => subscriber.error(err),
      complete: () => subscriber.complete(),
    });
  });
}
