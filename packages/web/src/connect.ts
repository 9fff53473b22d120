import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { Channel, Connection, type ConnectionOptions, FlameError } from "@flame-ts/core";

/** What a {@link TransportFactory} is given: connect-web's transport options. */
export interface TransportFactoryOptions {
  baseUrl: string;
  useBinaryFormat: boolean;
  fetch?: typeof globalThis.fetch;
  interceptors?: Interceptor[];
}

/**
 * Makes the Connect transport for `connect()`. connect-web's
 * `createGrpcWebTransport` and `createConnectTransport` fit as they are.
 */
export type TransportFactory = (options: TransportFactoryOptions) => Transport;

/**
 * Options for {@link connect} and {@link openChannel}: core's connection
 * options plus how to reach the server.
 */
export interface WebConnectOptions extends ConnectionOptions {
  /**
   * Makes the transport. The default is connect-web's binary gRPC-Web
   * (`createGrpcWebTransport`), which the emulator, `@flame-ts/gateway` and
   * Envoy all serve; browsers cannot speak plain gRPC. For a Connect
   * endpoint pass `createConnectTransport` (re-exported here). A test can
   * pass one that makes its router transport. `useBinaryFormat`, `fetch`
   * and `interceptors` are handed to it.
   */
  transport?: TransportFactory;
  /** A fetch to use instead of the global one (e.g. to set `credentials`). */
  fetch?: typeof globalThis.fetch;
  /** Send protobuf binary rather than JSON. Default true. */
  useBinaryFormat?: boolean;
  /** Connect interceptors run on every call (e.g. to add an auth header). */
  interceptors?: Interceptor[];
}

/**
 * Connect to Flame from a browser. `url` is the base URL of a gRPC-Web (or
 * Connect) endpoint in front of Flame, e.g. "https://flame.example.com".
 * Returns the same {@link Connection} as `@flame-ts/node`.
 */
export function connect(url: string, options: WebConnectOptions = {}): Connection {
  return new Connection(...connectionArgs(url, options));
}

/**
 * {@link connect} without the methods: a {@link Channel} for the standalone
 * functions (`listSessions(channel)`, `watchTask(channel, session, id)`), so
 * that a page's bundle holds only the calls it makes.
 */
export function openChannel(url: string, options: WebConnectOptions = {}): Channel {
  return new Channel(...connectionArgs(url, options));
}

function connectionArgs(url: string, options: WebConnectOptions): [Transport, ConnectionOptions] {
  const baseUrl = parseBaseUrl(url);
  const make = options.transport ?? createGrpcWebTransport;
  const transport = make({
    baseUrl,
    useBinaryFormat: options.useBinaryFormat ?? true,
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.interceptors ? { interceptors: options.interceptors } : {}),
  });
  // Over HTTP/1.1 a browser holds six connections per origin and each open
  // gRPC-Web stream takes one, so by default at most three watches get a
  // stream of their own (plus one ListTask poll for the rest), which leaves
  // connections for unary calls. Over HTTP/2, raise `watch.maxStreams`.
  return [
    transport,
    { ...options, watch: { maxStreams: BROWSER_WATCH_STREAMS, ...options.watch } },
  ];
}

/** Default `watch.maxStreams` in a browser: see {@link connect}. */
export const BROWSER_WATCH_STREAMS = 3;

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

function invalidConfig(message: string, cause?: unknown): FlameError {
  return new FlameError(message, { kind: "invalid-config", cause });
}
