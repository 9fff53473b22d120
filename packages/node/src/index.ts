/**
 * Flame client for Node.js: everything from `@flame-ts/core`, plus
 * {@link connect} over HTTP/2 gRPC (connect-node) with TLS, the Flame context file
 * (`~/.flame/flame.yaml`) and application specs from YAML.
 *
 * @packageDocumentation
 */
export * from "@flame-ts/core";
export {
  type ApplicationSpecFile,
  loadApplicationSpec,
  loadApplicationSpecs,
  parseApplicationManifest,
} from "./application-spec.js";
export { connect, connectWithContext, type NodeConnectOptions } from "./connect.js";
export { type FlameEndpoint, parseEndpoint } from "./endpoint.js";
export {
  defaultFlameContextPath,
  type FlameCacheConfig,
  type FlameContext,
  type FlamePackageConfig,
  type FlameRunnerConfig,
  type LoadFlameContextOptions,
  loadFlameContext,
} from "./flame-context.js";
export {
  createNodeTransport,
  DEFAULT_MAX_MESSAGE_BYTES,
  type Http2Options,
  type NodeTransport,
  type NodeTransportOptions,
} from "./node-transport.js";
export type { TlsMaterialOptions } from "./tls-material.js";
