// One import for browser apps: the whole core API plus a gRPC-Web connect().
export * from "@flame-ts/core";
export { connect, type WebConnectOptions } from "./connect.js";
