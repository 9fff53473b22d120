// Clients of the gateway in each protocol a browser or a Node program uses.
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { createGrpcWebTransport as createFetchGrpcWebTransport } from "@connectrpc/connect-web";
import { Frontend } from "@flame-ts/core";

/**
 * "grpc-web" is connect-node's HTTP/1.1 client, which sends chunked bodies
 * (Node's HTTP/1.1 server takes those); "grpc-web-fetch" is what a browser
 * does: fetch over HTTP/1.1 with a sized body (the gRPC-Web relay's case).
 */
export type Protocol =
  | "grpc-web"
  | "grpc-web-fetch"
  | "grpc-web-h2"
  | "connect"
  | "connect-json"
  | "grpc";

export function transportFor(protocol: Protocol, baseUrl: string): Transport {
  switch (protocol) {
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion: "1.1" });
    case "grpc-web-fetch":
      return createFetchGrpcWebTransport({ baseUrl, useBinaryFormat: true });
    case "grpc-web-h2":
      return createGrpcWebTransport({ baseUrl, httpVersion: "2" });
    case "connect":
      return createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true });
    case "connect-json":
      return createConnectTransport({ baseUrl, httpVersion: "1.1" });
    case "grpc":
      return createGrpcTransport({ baseUrl });
  }
}

export function clientFor(protocol: Protocol, baseUrl: string): Client<typeof Frontend> {
  return createClient(Frontend, transportFor(protocol, baseUrl));
}
