// Clients of the gateway in each protocol a browser or a Node program uses.
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { Frontend } from "@flame-ts/core";

export type Protocol = "grpc-web" | "grpc-web-h2" | "connect" | "connect-json" | "grpc";

export function transportFor(protocol: Protocol, baseUrl: string): Transport {
  switch (protocol) {
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion: "1.1" });
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
