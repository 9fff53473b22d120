// The public API of @flame-ts/core. Generated messages live under
// "@flame-ts/core/gen"; only the enums and the service are re-exported here.
// Every call is both a method (of Connection or Session) and a standalone
// function taking a Channel (a Connection is one): a bundle that imports
// only the functions it calls holds only their code.
export type {
  Application,
  ApplicationAttributes,
  ApplicationSchemaDocuments,
} from "./application.js";
export {
  getApplication,
  listApplications,
  registerApplication,
  unregisterApplication,
  updateApplication,
} from "./applications.js";
export type { RunAllOptions, RunManyOptions, RunProgress } from "./bulk.js";
export { runAll, runMany } from "./bulk.js";
export type { CallOptions } from "./call-options.js";
export type { ConnectionOptions } from "./channel.js";
export { Channel } from "./channel.js";
export type { Executor, FlameNode } from "./cluster.js";
export { getNode, listExecutors, listNodes } from "./cluster.js";
export type { Codec, TaskCodec } from "./codec.js";
export { codecs } from "./codec.js";
export { Connection } from "./connection.js";
export { connectionAffinity } from "./connection-affinity.js";
export type { FlameErrorInit, FlameErrorKind } from "./errors.js";
export { FlameError, kindOfCode, toFlameError } from "./errors.js";
export { Frontend } from "./gen/flame/v1/frontend_pb.js";
export {
  ApplicationState,
  ExecutorState,
  NodeState,
  SessionState,
  Shim,
  TaskState,
} from "./gen/flame/v1/types_pb.js";
export type { Logger, LogLevel } from "./logger.js";
export { consoleLogger, resolveLogger, silentLogger } from "./logger.js";
export { ResourceRequirement } from "./resource-requirement.js";
export type { RetryOptions } from "./retry.js";
export { backoffDelay, defaultRetry, isTransient } from "./retry.js";
export { invoke, run, runTask } from "./run.js";
export { Session } from "./session.js";
export { generateSessionId } from "./session-id.js";
export type { SessionInfo } from "./session-info.js";
export type { SessionAttributes } from "./sessions.js";
export {
  closeSession,
  createSession,
  deleteSession,
  getSession,
  listSessions,
  openOrCreateSession,
  openSession,
} from "./sessions.js";
export type { Task, TaskEvent } from "./task.js";
export { isTerminal } from "./task.js";
export type { TaskResult } from "./task-result.js";
export type { SessionRef } from "./tasks.js";
export { createTask, getTask, listTasks } from "./tasks.js";
export type { WatchSessionOptions } from "./watch-session.js";
export { watchSession } from "./watch-session.js";
export type { WatchOptions, WatchTaskOptions } from "./watch-task.js";
export { watchTask } from "./watch-task.js";
