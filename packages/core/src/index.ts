// The public API of @flame-ts/core. Generated messages live under
// "@flame-ts/core/gen"; only the enums and the service are re-exported here.
export type {
  Application,
  ApplicationAttributes,
  ApplicationSchemaDocuments,
} from "./application.js";
export type { RunAllOptions, RunManyOptions, RunProgress } from "./bulk.js";
export type { CallOptions } from "./call-options.js";
export type { Executor, FlameNode } from "./cluster.js";
export type { Codec, TaskCodec } from "./codec.js";
export { codecs } from "./codec.js";
export type { ConnectionOptions, SessionAttributes } from "./connection.js";
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
export { Session } from "./session.js";
export { generateSessionId } from "./session-id.js";
export type { Task, TaskEvent } from "./task.js";
export { isTerminal } from "./task.js";
export type { TaskResult } from "./task-result.js";
export type { WatchSessionOptions } from "./watch-session.js";
export type { WatchOptions, WatchTaskOptions } from "./watch-task.js";
