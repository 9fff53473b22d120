// The "@flame-ts/emulator/routes" entry point: the emulator as Connect routes,
// with no Node built-ins, for createRouterTransport() in a browser or a test.
export { DEFAULT_APPLICATIONS } from "./applications.js";
export { FLMPING_MEMORY_CAP } from "./flmping.js";
export type { EmulatorStats, StartFailure, TaskContext, TaskHandler } from "./options.js";
export { createEmulatorRoutes, type EmulatorRoutes, type EmulatorRoutesOptions } from "./routes.js";
export { EMULATOR_STORAGES, type EmulatorStorage } from "./storage.js";
export { TaskFailure } from "./task-failure.js";
