export { DEFAULT_APPLICATIONS } from "./applications.js";
export { type ConnectionLimits, connectionLimitDefaults } from "./connection-limits.js";
export { originAllowed } from "./cors.js";
export { startEmulator } from "./emulator.js";
export { SESSION_BIND_FAILED, SESSION_RETRY_LIMIT_REACHED } from "./flame-events.js";
export { FLMPING_MEMORY_CAP } from "./flmping.js";
export type {
  CorsOrigins,
  Emulator,
  EmulatorOptions,
  EmulatorProtocols,
  EmulatorStats,
  StartFailure,
  TaskContext,
  TaskHandler,
} from "./options.js";
export { FLAME_MAX_REQUEST_BYTES } from "./request-limit.js";
export { createEmulatorRoutes, type EmulatorRoutes, type EmulatorRoutesOptions } from "./routes.js";
export { EMULATOR_STORAGES, type EmulatorStorage } from "./storage.js";
export { TaskFailure } from "./task-failure.js";
