import { Observable } from "rxjs";
import type { CallOptions } from "./call-options.js";
import type { Channel } from "./channel.js";
import type { TaskCodec } from "./codec.js";
import { FlameError } from "./errors.js";
import { TaskState } from "./gen/flame/v1/types_pb.js";
import { PendingWait } from "./internal/bind-watch.js";
import { followTask } from "./internal/follow-task.js";
import type { Rpc } from "./internal/rpc.js";
import type { Scope } from "./internal/scope.js";
import type { Task } from "./task.js";
import { toTask } from "./task.js";
import type { TaskResult } from "./task-result.js";
import { lacksFailureEvent, toTaskResult } from "./task-result.js";
import { createTaskIn, resolveSession, type SessionRef, sessionIdOf } from "./tasks.js";
import type { WatchTaskOptions } from "./watch-task.js";

/**
 * Creates a task and watches it: a cold Observable, so each subscription
 * creates one task. The first value is CreateTask's answer; then every
 * change, as `watchTask` brings them, until the terminal state.
 */
export function runTask<In = Uint8Array, Out = Uint8Array>(
  channel: Channel,
  session: SessionRef<In, Out>,
  input?: In,
  options?: WatchTaskOptions,
): Observable<Task> {
  const { rpc } = channel;
  const { id: sessionId, codec } = resolveSession(session);
  return new Observable<Task>((subscriber) => {
    const scope = rpc.scope(options);
    const headers = options?.headers;
    const pending = new PendingWait(rpc, sessionId, headers, (err) => scope.abort(err));
    const next = (task: Task) => {
      pending.see(task);
      subscriber.next(task);
    };
    createTaskIn(rpc, sessionId, codec, input, { scope, headers })
      .then((created) =>
        followTask(rpc, sessionId, created.id, next, {
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
export async function run<In = Uint8Array, Out = Uint8Array>(
  channel: Channel,
  session: SessionRef<In, Out>,
  input?: In,
  options?: CallOptions,
): Promise<TaskResult<Out>> {
  const { rpc } = channel;
  const { id, codec } = resolveSession(session);
  const scope = rpc.scope(options);
  try {
    return await runIn(rpc, id, codec, input, scope, options?.headers);
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
export async function invoke<In = Uint8Array, Out = Uint8Array>(
  channel: Channel,
  session: SessionRef<In, Out>,
  input?: In,
  options?: CallOptions,
): Promise<Out> {
  const result = await run(channel, session, input, options);
  if (result.state === TaskState.Succeed) return result.output as Out;
  const sessionId = sessionIdOf(session);
  const state = TaskState[result.state];
  const detail = result.errorMessage ? `: ${result.errorMessage}` : "";
  throw Object.assign(
    new FlameError(`task ${sessionId}/${result.taskId} ${state}${detail}`, {
      kind: result.state === TaskState.Cancelled ? "cancelled" : "internal",
      serverMessage: result.errorMessage,
    }),
    { task: result.task },
  );
}

/** @internal One task from creation to its result, within `scope` (a run, a bulk run). */
export async function runIn<In, Out>(
  rpc: Rpc,
  sessionId: string,
  codec: TaskCodec<In, Out>,
  input: In | undefined,
  scope: Scope,
  headers: HeadersInit | undefined,
): Promise<TaskResult<Out>> {
  const created = await createTaskIn(rpc, sessionId, codec, input, { scope, headers });
  // A stuck session fails the scope: in runMany, the whole run.
  const pending = new PendingWait(rpc, sessionId, headers, (err) => scope.abort(err));
  let task: Task;
  try {
    task = await followTask(rpc, sessionId, created.id, (t) => pending.see(t), {
      scope,
      headers,
      initial: created,
    });
  } finally {
    pending.stop();
  }
  if (lacksFailureEvent(task)) {
    const read = await rpc.unary(
      "GetTask",
      (o) => rpc.client.getTask({ sessionId, taskId: task.id }, o),
      { scope, headers },
      true,
    );
    task = toTask(read, { id: task.id, sessionId });
  }
  return toTaskResult(task, codec.output);
}
