import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { connectionAffinity } from "../connection-affinity.js";
import { FlameError, toFlameError } from "../errors.js";
import { backoffDelay, sleep } from "../retry.js";
import type { Task } from "../task.js";
import { toTask } from "../task.js";
import type { Rpc } from "./rpc.js";
import type { Scope } from "./scope.js";
import { TaskGate } from "./task-gate.js";

export interface FollowOptions {
  /** Aborting it stops every stream and call; its reason becomes the error. */
  scope: Scope;
  headers?: HeadersInit | undefined;
  /** A state already known (CreateTask's answer, a ListTask row): skips the first GetTask. */
  initial?: Task | undefined;
  /** Consecutive resumes without progress before giving up (default 10). */
  maxResumes?: number | undefined;
}

export const defaultMaxResumes = 10;

// Codes after which re-watching cannot help: the request itself is wrong.
// DeadlineExceeded is GetTask's own deadline (the connection's timeoutMs):
// the server is not answering, and resuming would stretch a bound the
// caller set.
const fatalWatchCodes = new Set<Code>([
  Code.DeadlineExceeded,
  Code.AlreadyExists,
  Code.NotFound,
  Code.InvalidArgument,
  Code.PermissionDenied,
  Code.Unauthenticated,
  Code.Unimplemented,
  Code.FailedPrecondition,
]);

/**
 * Follows one task to a terminal state, calling `onTask` with its current
 * state and then each change (de-duplicated, terminal exactly once), and
 * resolves with the terminal task.
 *
 * Real Flame's WatchTask does not send the current state, and its stream
 * can end (or break: restart, network loss) before the task is terminal.
 * So: open WatchTask, ask GetTask for the current state while it opens,
 * and when the stream ends early, ask GetTask again and re-watch, with
 * capped backoff, until `maxResumes` attempts in a row made no progress.
 */
export async function followTask(
  rpc: Rpc,
  sessionId: string,
  taskId: string,
  onTask: (task: Task) => void,
  options: FollowOptions,
): Promise<Task> {
  const { scope, headers } = options;
  const signal = scope.signal;
  const maxResumes = options.maxResumes ?? defaultMaxResumes;
  const gate = new TaskGate(onTask);
  const request = { sessionId, taskId };
  if (options.initial !== undefined) gate.offer(options.initial);
  let needCurrent = options.initial === undefined;
  let failures = 0;
  let lastError: unknown;

  while (!gate.terminal) {
    if (signal.aborted) throw abortError(signal, "WatchTask");
    const before = gate.version;
    const attempt = scope.child();
    let method = "WatchTask";
    // True once the server has ended the stream (or sent the terminal state,
    // after which it ends it): then there is nothing to cancel.
    let streamOver = false;
    try {
      // The request goes out now; read the current state while it opens, on
      // the same connection, so the server sees the WatchTask first. With
      // the state known (a task just created), the stream goes anywhere.
      const contextValues = needCurrent
        ? createContextValues().set(connectionAffinity, attempt)
        : undefined;
      const stream = rpc.client.watchTask(request, {
        signal: attempt.signal,
        headers,
        contextValues,
      });
      const iterator = stream[Symbol.asyncIterator]();
      const first = iterator.next();
      first.catch(noop);
      if (needCurrent) {
        method = "GetTask";
        // Bounded by the connection's deadline on its own scope: the stream
        // shares `attempt`, and the deadline stays off the wire.
        const read = attempt.child(undefined, rpc.timeoutMs);
        const current = await rpc.client
          .getTask(request, { signal: read.signal, headers, contextValues })
          .finally(() => read.done())
          .catch((err: unknown) => {
            // A GetTask hiccup does not cost the watch that is already open:
            // read it anyway; the next round asks GetTask again.
            if (signal.aborted || !resumable(err)) throw err;
            lastError = err;
            rpc.logger.warn("GetTask failed; reading the watch without it", {
              sessionId,
              taskId,
              error: String((err as Error)?.message ?? err),
            });
            return undefined;
          });
        method = "WatchTask";
        if (current !== undefined) {
          gate.offer(toTask(current, { id: taskId, sessionId }));
          if (gate.terminal) break;
        }
      }
      let r = await first;
      for (; !r.done; r = await iterator.next()) {
        gate.offer(toTask(r.value, { id: taskId, sessionId }));
        if (gate.terminal) break;
      }
      streamOver = true;
      if (gate.terminal) break;
      rpc.logger.debug("watch ended before a terminal state; resuming", { sessionId, taskId });
    } catch (err) {
      if (signal.aborted) throw abortError(signal, method, err);
      if (!resumable(err)) throw toFlameError(err, method);
      lastError = err;
      rpc.logger.warn("watch broke; resuming", {
        sessionId,
        taskId,
        method,
        error: String((err as Error)?.message ?? err),
      });
    } finally {
      // A stream left open (GetTask failed, an error, a terminal state from
      // GetTask) is cancelled; a finished one is just forgotten.
      if (streamOver) attempt.done();
      else attempt.dispose();
    }
    needCurrent = true;
    failures = gate.version > before ? 0 : failures + 1;
    if (failures > maxResumes) {
      throw new FlameError(
        `WatchTask gave up on task ${sessionId}/${taskId} after ${failures} attempts without progress`,
        { kind: "unavailable", method: "WatchTask", cause: lastError },
      );
    }
    if (failures > 0) {
      try {
        await sleep(backoffDelay(failures - 1, rpc.retry ?? undefined), signal);
      } catch (err) {
        throw abortError(signal, "WatchTask", err);
      }
    }
  }
  return gate.last as Task;
}

/**
 * Whether a watch may try again after `err`. Only an answer about the
 * request itself (NotFound, InvalidArgument...) ends the watch; everything
 * else (resets, refused streams, a dropped connection) is tried again,
 * within the maxResumes budget. A poll (`deadlineEnds` false) also tries
 * again after one ListTask ran past its deadline.
 */
export function resumable(err: unknown, deadlineEnds = true): boolean {
  const code = err instanceof ConnectError ? err.code : ConnectError.from(err).code;
  if (code === Code.DeadlineExceeded) return !deadlineEnds;
  return !fatalWatchCodes.has(code);
}

/** The error for work stopped by `signal`: its reason, as a FlameError. */
export function abortError(signal: AbortSignal, method: string, cause?: unknown): FlameError {
  const reason = signal.reason ?? cause;
  return toFlameError(reason, method);
}

function noop() {}
