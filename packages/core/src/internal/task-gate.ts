import type { Task } from "../task.js";
import { stateRank } from "../task.js";

/**
 * Lets a task's states through in order and once. A task only moves
 * forward (Pending < Running < terminal); within a state, more events mean
 * a change. Anything older or equal to what was let through is dropped, and
 * after a terminal state nothing passes: a resumed watch can replay states
 * without the subscriber seeing them twice.
 */
export class TaskGate {
  private rank = -1;
  private events = -1;
  /** Counts the states let through; "progress" for the resume limit. */
  version = 0;
  last: Task | undefined;
  terminal = false;

  constructor(private readonly emit: (task: Task) => void) {}

  offer(task: Task): boolean {
    if (this.terminal) return false;
    const rank = stateRank(task.state);
    if (rank < this.rank || (rank === this.rank && task.events.length <= this.events)) {
      return false;
    }
    this.rank = rank;
    this.events = task.events.length;
    this.last = task;
    this.version++;
    this.terminal = rank === 2;
    this.emit(task);
    return true;
  }
}
