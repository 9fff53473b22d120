/**
 * Thrown by a handler to fail its task with output too: Flame stores an
 * instance's output whether the task succeeded or failed.
 */
export class TaskFailure extends Error {
  constructor(
    message: string,
    /** The failed task's output (a string is sent as UTF-8). */
    readonly output?: Uint8Array | string,
  ) {
    super(message);
    this.name = "TaskFailure";
  }
}
