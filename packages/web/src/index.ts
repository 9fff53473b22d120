// One import for browser apps: the whole core API plus connect() over
// connect-web (gRPC-Web by default, or the Connect protocol; binary or JSON).
export { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
export * from "@flame-ts/core";
export {
  connect,
  openChannel,
  type TransportFactory,
  type TransportFactoryOptions,
  type WebConnectOptions,
} from "./connect.js";
