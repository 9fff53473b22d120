import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type EventSchema,
  type SessionSchema,
  type SessionState,
  type TaskSchema,
  TaskState,
} from "@flame-ts/core/gen";
import type { AsyncQueue } from "./async-queue.js";
import type { NormalisedSpec } from "./session-spec.js";

// The emulator's task and session records, and their wire form.

export type TaskMessage = MessageInitShape<typeof TaskSchema>;
export type EventInit = MessageInitShape<typeof EventSchema>;

export interface Counts {
  pending: number;
  running: number;
  succeed: number;
  failed: number;
  cancelled: number;
}

export interface TaskRecord {
  id: string;
  session: SessionRecord;
  input: Uint8Array | undefined;
  output: Uint8Array | undefined;
  state: TaskState;
  creationTime: bigint;
  completionTime: bigint | undefined;
  /** Every event of the task, as GetTask returns them. */
  events: EventInit[];
  /**
   * The events on the task record itself, which WatchTask and ListTask send:
   * what the last GetTask wrote there, cleared by each stored state change
   * except on the `none` engine.
   */
  snapshot: EventInit[];
  /**
   * Open WatchTask streams on this task, each with the state it last saw
   * (at subscribe time, then each state sent): Flame sends a change only when
   * the state differs from it. Created on first watch.
   */
  watchers: Map<AsyncQueue<TaskMessage>, TaskState> | undefined;
  abort: AbortController | undefined;
}

export interface SessionRecord {
  id: string;
  seq: number;
  spec: NormalisedSpec;
  state: SessionState;
  creationTime: bigint;
  completionTime: bigint | undefined;
  /** Session events (bind failures), returned by GetSession and ListSession only. */
  events: EventInit[];
  tasks: Map<string, TaskRecord>;
  nextTaskId: number;
  counts: Counts;
  /** Pending tasks that may run now, oldest first; `head` skips those already taken. */
  ready: TaskRecord[];
  head: number;
  deleted: boolean;
  /** Failed attempts to bind an executor; at the retry limit assignment stops for good. */
  bindFailures: number;
  bindPaused: boolean;
  /** When its last task ended (ms), and the timer that unbinds its idle executors. */
  lastFinish: number;
  releaseTimer: ReturnType<typeof setTimeout> | undefined;
}

const TERMINAL = new Set([TaskState.Succeed, TaskState.Failed, TaskState.Cancelled]);
export const isTerminal = (state: TaskState) => TERMINAL.has(state);

// Indexed by TaskState's numbers (Pending = 0 ... Cancelled = 4).
const COUNTERS = ["pending", "running", "succeed", "failed", "cancelled"] as const;
const counterOf = (state: TaskState): keyof Counts => COUNTERS[state] as keyof Counts;

export const increment = (counts: Counts, state: TaskState) => {
  counts[counterOf(state)]++;
};
export const decrement = (counts: Counts, state: TaskState) => {
  counts[counterOf(state)]--;
};

/** The task on the wire with `events` (GetTask: all of them; other replies: the record's snapshot). */
export const toTask = (
  task: TaskRecord,
  events: readonly EventInit[] = task.snapshot,
): TaskMessage => ({
  metadata: { id: task.id, name: task.id },
  spec: {
    sessionId: task.session.id,
    ...(task.input !== undefined ? { input: task.input } : {}),
    ...(task.output !== undefined ? { output: task.output } : {}),
  },
  status: {
    state: task.state,
    creationTime: task.creationTime,
    ...(task.completionTime !== undefined ? { completionTime: task.completionTime } : {}),
    events: events.slice(),
  },
});

/** The session on the wire; only GetSession and ListSession load its events. */
export const toSession = (
  session: SessionRecord,
  withEvents = false,
): MessageInitShape<typeof SessionSchema> => {
  const { spec, counts } = session;
  return {
    metadata: { id: session.id, name: session.id },
    spec: {
      application: spec.application,
      ...(spec.commonData !== undefined ? { commonData: spec.commonData } : {}),
      minInstances: spec.minInstances,
      ...(spec.maxInstances !== undefined ? { maxInstances: spec.maxInstances } : {}),
      batchSize: 1,
      priority: spec.priority,
      resreq: spec.resreq,
    },
    status: {
      state: session.state,
      creationTime: session.creationTime,
      ...(session.completionTime !== undefined ? { completionTime: session.completionTime } : {}),
      pending: counts.pending,
      running: counts.running,
      succeed: counts.succeed,
      failed: counts.failed,
      cancelled: counts.cancelled,
      events: withEvents ? session.events.slice() : [],
    },
  };
};
