// "@flame-ts/web/connect-protocol": connect() with every wire format
// connect-web has (gRPC-Web or the Connect protocol, binary or JSON). It is
// a separate entry so that a page on the default binary gRPC-Web carries
// neither the Connect protocol nor protobuf's JSON reader and writer.
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import type { Connection } from "@flame-ts/core";
import { connectWith, type WebConnectOptions } from "./connect.js";

export type { TransportFactory, WebConnectOptions } from "./connect.js";

/**
 * `connect()` of "@flame-ts/web" that also honours `protocol: "connect"`
 * and `useBinaryFormat: false`, through connect-web's transports.
 */
export function connect(url: string, options: WebConnectOptions = {}): Connection {
  return connectWith(url, options, (protocol) =>
    protocol === "connect" ? createConnectTransport : createGrpcWebTransport,
  );
}
