// The "@flame-ts/emulator/routes" entry point: the emulator as Connect routes,
// with no Node built-ins, for createRouterTransport() in a browser or a test.
export { DEFAULT_APPLICATIONS } from "./applications.js";
export { SESSION_BIND_FAILED, SESSION_RETRY_LIMIT_REACHED } from "./flame-events.js";
export { FLMPING_MEMORY_CAP } from "./flmping.js";
export type { EmulatorStats, StartFailure, TaskContext, TaskHandler } from "./options.js";
export { FLAME_MAX_REQUEST_BYTES } from "./request-limit.js";
export { createEmulatorRoutes, type EmulatorRoutes, type EmulatorRoutesOptions } from "./routes.js";
export { EMULATOR_STORAGES, type EmulatorStorage } from "./storage.js";
export { TaskFailure } from "./task-failure.js";
