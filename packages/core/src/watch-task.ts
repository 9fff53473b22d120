import { Observable } from "rxjs";
import type { CallOptions } from "./call-options.js";
import { followTask } from "./internal/follow-task.js";
import type { Rpc } from "./internal/rpc.js";
import type { Task } from "./task.js";

export interface WatchTaskOptions extends CallOptions {
  /**
   * Consecutive resume attempts that make no progress before the watch
   * fails with kind "unavailable" (default 10).
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
 * Each subscription has its own AbortController: unsubscribing cancels the
 * server stream at once (breaking out of a Connect stream would not).
 */
export function watchTask(
  rpc: Rpc,
  sessionId: string,
  taskId: string,
  options?: WatchTaskOptions,
  initial?: Task,
): Observable<Task> {
  return new Observable<Task>((subscriber) => {
    const scope = rpc.scope(options);
    followTask(rpc, sessionId, taskId, (task) => subscriber.next(task), {
      scope,
      headers: options?.headers,
      initial,
      maxResumes: options?.maxResumes,
    }).then(
      () => subscriber.complete(),
      (err) => subscriber.error(err),
    );
    return () => scope.dispose();
  });
}
