import type { Codec } from "./codec.js";
import { TaskState } from "./gen/flame/v1/types_pb.js";
import type { Task } from "./task.js";

/**
 * How a task ended, as flame-rs's `run` reports it: the final state, the
 * decoded output, and for a task that did not succeed the code and message
 * of its last event (a failed task's last event has code 3, the Failed
 * state, and the instance's error message).
 */
export interface TaskResult<Out = Uint8Array> {
  taskId: string;
  state: TaskState;
  output?: Out;
  errorCode?: number;
  errorMessage?: string;
  /** The final task, raw bytes and all events included. */
  task: Task;
}

export function toTaskResult<Out>(task: Task, codec: Codec<Out>): TaskResult<Out> {
  const result: TaskResult<Out> = { taskId: task.id, state: task.state, task };
  if (task.state === TaskState.Succeed) {
    if (task.output !== undefined) result.output = codec.decode(task.output);
    return result;
  }
  const last = task.events[task.events.length - 1];
  if (last !== undefined) {
    result.errorCode = last.code;
    if (last.message !== undefined) result.errorMessage = last.message;
  }
  return result;
}
