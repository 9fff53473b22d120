import type { Codec } from "./codec.js";
import { TaskState } from "./gen/flame/v1/types_pb.js";
import type { Task, TaskEvent } from "./task.js";

/**
 * How a task ended, as flame-rs's `run` reports it: the final state, the
 * decoded output, and for a task that did not succeed the code and message
 * of the event that ended it (a failed task's has code 3, the Failed state,
 * and the instance's error message). flame-rs joins every event's message
 * with "; " instead; `task.events` has them all.
 */
export interface TaskResult<Out = Uint8Array> {
  taskId: string;
  sessionId: string;
  state: TaskState;
  output?: Out;
  errorCode?: number;
  errorMessage?: string;
  /**
   * The final task with its raw bytes. A failed one is as GetTask has it,
   * every event included; on real Flame others carry the events their
   * watch brought, which are none (sqlite, fs) or a stale copy (none).
   */
  task: Task;
}

export function toTaskResult<Out>(task: Task, codec: Codec<Out>): TaskResult<Out> {
  const result: TaskResult<Out> = {
    taskId: task.id,
    sessionId: task.sessionId,
    state: task.state,
    task,
  };
  if (task.state === TaskState.Succeed) {
    if (task.output !== undefined) result.output = codec.decode(task.output);
    return result;
  }
  const ending = endingEvent(task);
  if (ending !== undefined) {
    result.errorCode = ending.code;
    if (ending.message !== undefined) result.errorMessage = ending.message;
  }
  return result;
}

/**
 * The event that records the task's terminal state: the last one whose code
 * is that state's number. Flame records one for Failed (code 3, with the
 * instance's message) and none for Cancelled; the events before it
 * ("created", "running") are not the error.
 */
export function endingEvent(task: Task): TaskEvent | undefined {
  for (let i = task.events.length - 1; i >= 0; i--) {
    const event = task.events[i] as TaskEvent;
    if (event.code === task.state) return event;
  }
  return undefined;
}

/**
 * Whether a terminal task still lacks its error: a Failed task without its
 * code-3 event. Real Flame sends task events only in GetTask's answer
 * (WatchTask, ListTask and CreateTask carry none, or a stale copy), so such
 * a task is read once more with GetTask.
 */
export function lacksFailureEvent(task: Task): boolean {
  return task.state === TaskState.Failed && endingEvent(task) === undefined;
}
