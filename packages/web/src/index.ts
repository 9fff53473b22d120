// One import for browser apps: the whole core API plus connect() over
// connect-web (gRPC-Web by default, or the Connect protocol; binary or JSON).
export * from "@flame-ts/core";
export {
  connect,
  type TransportFactory,
  type TransportFactoryOptions,
  type WebConnectOptions,
} from "./connect.js";
