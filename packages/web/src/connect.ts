import type { Transport } from "@connectrpc/connect";
import { Connection, type ConnectionOptions, FlameError } from "@flame-ts/core";
import { createBinaryGrpcWebTransport } from "./grpc-web-transport.js";

/**
 * Makes the Connect transport for `connect()`. connect-web's
 * `createGrpcWebTransport` and `createConnectTransport` fit as they are.
 */
export type TransportFactory = (options: {
  baseUrl: string;
  useBinaryFormat: boolean;
  fetch?: typeof globalThis.fetch;
}) => Transport;

/** Options for {@link connect}: core's connection options plus how to reach the server. */
export interface WebConnectOptions extends ConnectionOptions {
  /**
   * Wire protocol. Browsers cannot speak plain gRPC, so the default is
   * gRPC-Web, which the emulator, `@flame-ts/gateway` and Envoy all serve.
   * "connect" (a Connect-protocol endpoint) needs `connect` from
   * "@flame-ts/web/connect-protocol", or a `transport`, so that pages that
   * do not use it do not carry it.
   */
  protocol?: "grpc-web" | "connect";
  /** A fetch to use instead of the global one (e.g. to set `credentials`). */
  fetch?: typeof globalThis.fetch;
  /**
   * Send protobuf binary rather than JSON. Default true. JSON, like
   * "connect", needs "@flame-ts/web/connect-protocol" or a `transport`.
   */
  useBinaryFormat?: boolean;
  /**
   * Makes the transport instead of the built-in binary gRPC-Web one, e.g.
   * `createConnectTransport` from "@connectrpc/connect-web". `protocol` is
   * then ignored; `useBinaryFormat` and `fetch` are handed to it.
   */
  transport?: TransportFactory;
}

/**
 * Connect to Flame from a browser. `url` is the base URL of a gRPC-Web (or
 * Connect) endpoint in front of Flame, e.g. "https://flame.example.com".
 * Returns the same {@link Connection} as `@flame-ts/node`.
 */
export function connect(url: string, options: WebConnectOptions = {}): Connection {
  return connectWith(url, options, binaryGrpcWeb);
}

/** @internal `connect()` with another default transport (see connect-protocol.ts). */
export function connectWith(
  url: string,
  options: WebConnectOptions,
  defaultTransport: (protocol: "grpc-web" | "connect") => TransportFactory,
): Connection {
  const baseUrl = parseBaseUrl(url);
  const protocol = options.protocol ?? "grpc-web";
  if (protocol !== "grpc-web" && protocol !== "connect") {
    throw invalidConfig(`unknown protocol "${String(protocol)}"`);
  }
  const make = options.transport ?? defaultTransport(protocol);
  const transport = make({
    baseUrl,
    useBinaryFormat: options.useBinaryFormat ?? true,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  // Over HTTP/1.1 a browser holds six connections per origin and each open
  // gRPC-Web stream takes one, so by default at most three watches get a
  // stream of their own (plus one ListTask poll for the rest), which leaves
  // connections for unary calls. Over HTTP/2, raise `watch.maxStreams`.
  return new Connection(transport, {
    ...options,
    watch: { maxStreams: BROWSER_WATCH_STREAMS, ...options.watch },
  });
}

/** Default `watch.maxStreams` in a browser: see {@link connectWith}. */
export const BROWSER_WATCH_STREAMS = 3;

function binaryGrpcWeb(protocol: "grpc-web" | "connect"): TransportFactory {
  return (options) => {
    if (protocol === "connect") throw needsFull('protocol "connect"');
    if (!options.useBinaryFormat) throw needsFull("useBinaryFormat: false");
    return createBinaryGrpcWebTransport(options);
  };
}

function parseBaseUrl(url: string): string {
  const bad = (why: string, cause?: unknown) =>
    invalidConfig(`invalid Flame URL "${url}": ${why}`, cause);
  const trimmed = url.trim();
  // "host:port" parses as a URL whose scheme is "host:"; catch it first.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    throw bad(
      `give an absolute http:// or https:// URL, e.g. "http://${trimmed || "localhost:8080"}"`,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(trimmed);
  } catch (cause) {
    throw bad(String(cause), cause);
  }
  if (!/^https?:$/.test(parsed.protocol)) {
    throw bad(`a browser reaches Flame over http: or https:, not ${parsed.protocol}`);
  }
  // Connect appends "/flame.v1.Frontend/Method"; a trailing slash would double it.
  return parsed.href.replace(/\/+$/, "");
}

function needsFull(what: string): FlameError {
  return invalidConfig(`${what} needs "@flame-ts/web/connect-protocol" or a \`transport\``);
}

export function invalidConfig(message: string, cause?: unknown): FlameError {
  return new FlameError(message, { kind: "invalid-config", cause });
}
