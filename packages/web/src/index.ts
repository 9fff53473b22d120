// One import for browser apps: the whole core API plus a gRPC-Web connect().
export * from "@flame-ts/core";
export { connect, type TransportFactory, type WebConnectOptions } from "./connect.js";
export {
  type BinaryGrpcWebTransportOptions,
  createBinaryGrpcWebTransport,
} from "./grpc-web-transport.js";
