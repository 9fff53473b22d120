// The Pi job itself: one session, `taskNum` tasks of `{"samples": N}`, the
// `inside` counts summed. Works against any Connection: the emulator, a real
// Flame over gRPC, or a gateway.

import type { Connection, Session, TaskResult } from "@flame-ts/node";
import { codecs, FlameError, TaskState } from "@flame-ts/node";
import type { Subscription } from "rxjs";
import type { PiInput, PiOutput } from "./pi-service.js";

export interface EstimateOptions {
  /** Flame application that counts the points (default "pi"). */
  app?: string;
  /** Number of tasks. */
  taskNum: number;
  /** Random samples per task. */
  samples: number;
  /** Tasks in flight at once (default {@link DEFAULT_CONCURRENCY}). */
  concurrency?: number;
  /** Called after each finished task. */
  onProgress?: (done: number, total: number) => void;
  /** Called once the session exists, with its id. */
  onSession?: (sessionId: string) => void;
  /** Notes that do not stop the job (e.g. the session could not be closed after a failure). */
  onWarning?: (message: string) => void;
  /** Aborting stops submitting tasks and closes the session. */
  signal?: AbortSignal;
}

export interface PiEstimate {
  sessionId: string;
  /** Points that fell inside the quarter circle, over all tasks. */
  inside: number;
  /** Points drawn: taskNum × samples. */
  total: number;
  /** 4 × inside / total. */
  pi: number;
}

/** A task of the job ended other than Succeed; the message is the task's own. */
export class PiTaskError extends Error {
  override name = "PiTaskError";
  constructor(
    message: string,
    readonly sessionId: string,
    readonly taskId: string,
    readonly state: TaskState,
  ) {
    super(message);
  }
}

export const DEFAULT_CONCURRENCY = 32;

/** How long closing may wait for tasks that were already running when the job stopped. */
const CLOSE_BUDGET_MS = 60_000;

export async function estimatePi(
  connection: Connection,
  options: EstimateOptions,
): Promise<PiEstimate> {
  const { taskNum, samples, signal } = options;
  const total = taskNum * samples;
  if (!Number.isSafeInteger(taskNum) || taskNum < 1) {
    throw new RangeError(`taskNum must be a positive integer, got ${taskNum}`);
  }
  if (!Number.isSafeInteger(samples) || samples < 1 || !Number.isSafeInteger(total)) {
    throw new RangeError(`samples must be a positive integer, got ${samples}`);
  }
  signal?.throwIfAborted();

  const session = await connection.createSession({
    application: options.app ?? "pi",
    codec: codecs.json<PiInput, PiOutput>(),
  });
  options.onSession?.(session.id);

  let estimate: PiEstimate;
  try {
    // Every task asks for the same thing; one shared input object is enough.
    const inputs: PiInput[] = new Array(taskNum).fill({ samples });
    const inside = await sumInside(session, inputs, options);
    estimate = { sessionId: session.id, inside, total, pi: (4 * inside) / total };
  } catch (error) {
    // The job's own error wins; a close failure after it is only a warning.
    await closeWhenIdle(session).catch((closeError: unknown) =>
      options.onWarning?.(`could not close session ${session.id}: ${messageOf(closeError)}`),
    );
    throw error;
  }
  await closeWhenIdle(session);
  return estimate;
}

/** Runs the tasks with bounded concurrency and sums `inside`; rejects at the first task that does not succeed. */
function sumInside(
  session: Session<PiInput, PiOutput>,
  inputs: PiInput[],
  options: EstimateOptions,
): Promise<number> {
  const { signal, onProgress } = options;
  return new Promise<number>((resolve, reject) => {
    let inside = 0;
    let settled = false;
    let subscription: Subscription | undefined;
    const finish = (error?: unknown) => {
      if (settled) return;
      settled = true;
      // Unsubscribing stops runMany from creating more tasks.
      subscription?.unsubscribe();
      signal?.removeEventListener("abort", onAbort);
      if (error === undefined) resolve(inside);
      else reject(error);
    };
    const onAbort = () => finish(signal?.reason ?? new Error("aborted"));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });

    subscription = session
      .runMany(inputs, { concurrency: options.concurrency ?? DEFAULT_CONCURRENCY })
      .subscribe({
        next: ({ result, done, total }) => {
          if (settled) return;
          try {
            inside += insideOf(session.id, result);
          } catch (error) {
            finish(error);
            return;
          }
          onProgress?.(done, total);
        },
        error: (error: unknown) => finish(error),
        complete: () => finish(),
      });
    // runMany may have settled synchronously, before `subscription` was assigned.
    if (settled) subscription.unsubscribe();
  });
}

function insideOf(sessionId: string, result: TaskResult<PiOutput>): number {
  if (result.state !== TaskState.Succeed) {
    const what = result.state === TaskState.Cancelled ? "was cancelled" : "failed";
    const message = result.errorMessage ?? `task ${result.taskId} ${what}`;
    throw new PiTaskError(message, sessionId, result.taskId, result.state);
  }
  const inside = result.output?.inside;
  if (typeof inside !== "number" || !Number.isSafeInteger(inside) || inside < 0) {
    throw new PiTaskError(
      `task ${result.taskId} returned ${JSON.stringify(result.output) ?? "no output"}; expected {"inside": K}`,
      sessionId,
      result.taskId,
      result.state,
    );
  }
  return inside;
}

/**
 * Closes the session. Flame refuses to close a session while any of its tasks
 * is Running (there is no call to cancel a running task), so after a failure
 * or an abort the tasks already running are let finish: closing is retried
 * with backoff until it succeeds or the budget runs out. Pending tasks are
 * cancelled by the close itself.
 */
async function closeWhenIdle(session: Session<PiInput, PiOutput>): Promise<void> {
  const deadline = Date.now() + CLOSE_BUDGET_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      await session.close();
      return;
    } catch (error) {
      if (!isRunningTasksError(error) || Date.now() >= deadline) throw error;
    }
    await sleep(Math.min(50 * 2 ** attempt, 1_000));
  }
}

// Flame refuses with INTERNAL "Cannot close session with running tasks" (a
// storage error); the client gives it kind "invalid-state". Never test the
// code: it is Internal, not InvalidArgument. The message is checked too, for
// a server that words the kind differently.
function isRunningTasksError(error: unknown): boolean {
  if (!FlameError.is(error)) return false;
  const text = `${error.serverMessage ?? ""} ${error.message}`;
  return error.kind === "invalid-state" || /running task/i.test(text);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
