import type { Event as EventMessage, Task as TaskMessage } from "./gen/flame/v1/types_pb.js";
import { TaskState } from "./gen/flame/v1/types_pb.js";

/** Something that happened to a task or session (Flame's `Event`). */
export interface TaskEvent {
  /** For state changes, the state's number (a failed task's last event has code 3). */
  code: number;
  message?: string;
  creationTime: Date;
}

/**
 * A task as plain data. `input` and `output` are the raw bytes; the
 * session's codec decodes them in `run()`/`invoke()` results.
 */
export interface Task {
  id: string;
  sessionId: string;
  state: TaskState;
  input?: Uint8Array;
  output?: Uint8Array;
  creationTime: Date;
  completionTime?: Date;
  events: TaskEvent[];
}

/** Succeed, Failed and Cancelled are final: the task never changes again. */
export function isTerminal(state: TaskState): boolean {
  return state === TaskState.Succeed || state === TaskState.Failed || state === TaskState.Cancelled;
}

/**
 * Position of a state in a task's life: Pending 0, Running 1, terminal 2.
 * States only move forward, which is what de-duplication relies on.
 * A state this client does not know (a newer Flame's) ranks with Running:
 * passed through, never taken for the end of the task.
 */
export function stateRank(state: TaskState): number {
  if (state === TaskState.Pending) return 0;
  return isTerminal(state) ? 2 : 1;
}

/** Milliseconds since the epoch (int64 on the wire) as a Date. */
export function msToDate(ms: bigint): Date {
  return new Date(Number(ms));
}

/**
 * A task from its message. `known` fills in what the caller asked about
 * (the task's id and session) when the reply leaves it out.
 */
export function toTask(
  message: TaskMessage,
  known: { id?: string; sessionId?: string } = {},
): Task {
  const status = message.status;
  const task: Task = {
    id: message.metadata?.id || (known.id ?? ""),
    sessionId: message.spec?.sessionId || (known.sessionId ?? ""),
    state: status?.state ?? TaskState.Pending,
    creationTime: msToDate(status?.creationTime ?? 0n),
    events: toEvents(status?.events),
  };
  if (message.spec?.input !== undefined) task.input = message.spec.input;
  if (message.spec?.output !== undefined) task.output = message.spec.output;
  if (status?.completionTime !== undefined) task.completionTime = msToDate(status.completionTime);
  return task;
}

/** Events of a task or session from their messages. */
export function toEvents(messages: readonly EventMessage[] = []): TaskEvent[] {
  return messages.map((e) => {
    const event: TaskEvent = { code: e.code, creationTime: msToDate(e.creationTime) };
    if (e.message !== undefined) event.message = e.message;
    return event;
  });
}
