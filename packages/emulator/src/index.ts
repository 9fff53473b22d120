export { DEFAULT_APPLICATIONS } from "./applications.js";
export { type ConnectionLimits, connectionLimitDefaults } from "./connection-limits.js";
export { originAllowed } from "./cors.js";
export { startEmulator } from "./emulator.js";
export { FLMPING_MEMORY_CAP } from "./flmping.js";
export type {
  CorsOrigins,
  Emulator,
  EmulatorOptions,
  EmulatorProtocols,
  EmulatorStats,
  TaskContext,
  TaskHandler,
} from "./options.js";
export { createEmulatorRoutes, type EmulatorRoutes, type EmulatorRoutesOptions } from "./routes.js";
