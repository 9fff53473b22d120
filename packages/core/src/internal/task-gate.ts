import type { TaskState } from "../gen/flame/v1/types_pb.js";
import type { Task } from "../task.js";
import { stateRank } from "../task.js";

// A task's progress packed in one number: its state's rank (Pending 0,
// Running 1, terminal 2) above its event count. Tasks only move forward,
// so a larger number is a newer state. One number per watcher keeps the
// polled watches of the hub small.
const RANK = 2 ** 32;

/** Progress before any state was seen. */
export const noProgress = -1;

/** Progress of a terminal state with no events: anything at or above it is final. */
export const terminalProgress = 2 * RANK;

/** The packed progress of a state with `events` events. */
export function progressOf(state: TaskState, events: number): number {
  return stateRank(state) * RANK + Math.min(events, RANK - 1);
}

/**
 * Whether a state with progress `next` should be let through after one
 * with `seen`: only newer states, and nothing after a terminal state.
 */
export function advances(seen: number, next: number): boolean {
  return seen < terminalProgress && next > seen;
}

/**
 * Lets a task's states through in order and once. A task only moves
 * forward (Pending < Running < terminal); within a state, more events mean
 * a change. Anything older or equal to what was let through is dropped, and
 * after a terminal state nothing passes: a resumed watch can replay states
 * without the subscriber seeing them twice.
 */
export class TaskGate {
  private progress = noProgress;
  /** Counts the states let through; "progress" for the resume limit. */
  version = 0;
  last: Task | undefined;
  terminal = false;

  constructor(private readonly emit: (task: Task) => void) {}

  offer(task: Task): boolean {
    const next = progressOf(task.state, task.events.length);
    if (!advances(this.progress, next)) return false;
    this.progress = next;
    this.last = task;
    this.version++;
    this.terminal = next >= terminalProgress;
    this.emit(task);
    return true;
  }
}
