import { TaskState } from "@flame-ts/core/gen";
import type { EventInit } from "./records.js";

// The events Flame records, worded as its session manager words them. Event
// times are real milliseconds on every engine.

/** Session event: an executor could not bind the session (its application did not start). */
export const SESSION_BIND_FAILED = 1001;
/** Session event: binding failed too often; no executor is assigned to the session again. */
export const SESSION_RETRY_LIMIT_REACHED = 1002;

const event = (code: number, message: string): EventInit => ({
  code,
  message,
  creationTime: BigInt(Date.now()),
});

export const taskCreated = () => event(TaskState.Pending, "Task was created with state <Pending>");

export const taskRunning = () => event(TaskState.Running, "Task state was updated to <Running>");

export const taskSucceeded = () =>
  event(TaskState.Succeed, "Task was completed with state <Succeed>");

/** The instance's message, or Flame's own words when it sent none. */
export const taskFailed = (message: string | undefined) =>
  event(TaskState.Failed, message || "Task failed with state <Failed>");

export const bindFailed = (executor: string, node: string, returnCode: number, detail: string) =>
  event(
    SESSION_BIND_FAILED,
    `Executor <${executor}> on node <${node}> failed to bind session with return_code <${returnCode}>: ${detail}`,
  );

export const retryLimitReached = (attempts: number, limit: number) =>
  event(
    SESSION_RETRY_LIMIT_REACHED,
    `Session retry limit reached after ${attempts}/${limit} failed attempts; new executor assignment is paused for this session; existing executors are unchanged.`,
  );
