export { maxLoggedFieldLength } from "./bounded-log.js";
export { type AllowedOrigins, CorsPolicy } from "./cors.js";
export { maxDeadlineMs } from "./deadline.js";
export {
  defaultMaxMessageBytes,
  type Gateway,
  type GatewayLimits,
  type GatewayOptions,
  gatewayLimitDefaults,
  startGateway,
} from "./gateway.js";
export type { GatewayStats } from "./gateway-stats.js";
export { createStreamLogger, type GatewayLogger, type LogLevel, silentLogger } from "./logger.js";
export {
  frontendMethodNames,
  type MethodSelection,
  readOnlyMethodNames,
  resolveMethodSelection,
} from "./method-policy.js";
export { parseUpstreamUrl } from "./upstream.js";
