import { Observable } from "rxjs";
import type { CallOptions } from "./call-options.js";
import type { Channel } from "./channel.js";
import { runIn } from "./run.js";
import type { TaskResult } from "./task-result.js";
import { resolveSession, type SessionRef } from "./tasks.js";

export interface RunManyOptions extends CallOptions {
  /** Tasks in flight at once (default 16). */
  concurrency?: number;
}

export interface RunAllOptions extends RunManyOptions {
  /** Called after each task ends, with the count done and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** One finished task of a bulk run: which input, how it ended, and the progress so far. */
export interface RunProgress<Out> {
  index: number;
  result: TaskResult<Out>;
  done: number;
  total: number;
}

export const defaultConcurrency = 16;

/**
 * Runs many inputs with at most `concurrency` (default 16) in flight: a
 * cold Observable of `{ index, result, done, total }` in completion order,
 * for progress bars. A task that fails or is cancelled is a result (see
 * `result.state`), not an error; an error from the server or the network
 * (CreateTask is never retried) errors the whole run and cancels the tasks
 * still being watched. Unsubscribing cancels them too.
 *
 * One AbortController serves the whole subscription and nothing is
 * allocated per task beyond the call itself, so 10,000 tasks cost little
 * more than the raw calls.
 */
export function runMany<In = Uint8Array, Out = Uint8Array>(
  channel: Channel,
  session: SessionRef<In, Out>,
  inputs: Iterable<In> | ArrayLike<In>,
  options?: RunManyOptions,
): Observable<RunProgress<Out>> {
  const { rpc } = channel;
  const { id: sessionId, codec } = resolveSession(session);
  const headers = options?.headers;
  return new Observable<RunProgress<Out>>((subscriber) => {
    const items: ArrayLike<In> = isArrayLike(inputs) ? inputs : Array.from(inputs);
    const total = items.length;
    const limit = Math.max(1, Math.floor(options?.concurrency ?? defaultConcurrency));
    const scope = rpc.scope(options);
    let next = 0;
    let done = 0;
    let stopped = false;

    const launch = () => {
      while (!stopped && next < total && next - done < limit) {
        const index = next++;
        // Calls are children of the subscription's scope: no per-task scope.
        runIn(rpc, sessionId, codec, items[index], scope, headers).then(
          (result) => {
            if (stopped) return;
            done++;
            subscriber.next({ index, result, done, total });
            if (done === total) {
              stopped = true;
              subscriber.complete();
            } else launch();
          },
          (err) => {
            if (stopped) return;
            stopped = true;
            subscriber.error(err);
          },
        );
      }
    };
    if (total === 0) subscriber.complete();
    else launch();
    return () => {
      stopped = true;
      scope.dispose();
    };
  });
}

/**
 * `runMany` as a Promise of every result in input order, with
 * `onProgress(done, total)` after each task ends.
 */
export function runAll<In = Uint8Array, Out = Uint8Array>(
  channel: Channel,
  session: SessionRef<In, Out>,
  inputs: Iterable<In> | ArrayLike<In>,
  options?: RunAllOptions,
): Promise<TaskResult<Out>[]> {
  const onProgress = options?.onProgress;
  return new Promise((resolve, reject) => {
    const results: TaskResult<Out>[] = [];
    runMany(channel, session, inputs, options).subscribe({
      next: ({ index, result, done, total }) => {
        results[index] = result;
        onProgress?.(done, total);
      },
      error: reject,
      complete: () => resolve(results),
    });
  });
}

function isArrayLike<T>(value: Iterable<T> | ArrayLike<T>): value is ArrayLike<T> {
  return (
    Array.isArray(value) ||
    (typeof (value as ArrayLike<T>).length === "number" && typeof value !== "string")
  );
}
