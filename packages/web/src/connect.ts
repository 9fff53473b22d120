import type { Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { Connection, type ConnectionOptions, FlameError } from "@flame-ts/core";

/** Options for {@link connect}: core's connection options plus how to reach the server. */
export interface WebConnectOptions extends ConnectionOptions {
  /**
   * Wire protocol. Browsers cannot speak plain gRPC, so the default is
   * gRPC-Web, which the emulator, `@flame-ts/gateway` and Envoy all serve.
   * Use "connect" for a Connect-protocol endpoint.
   */
  protocol?: "grpc-web" | "connect";
  /** A fetch to use instead of the global one (e.g. to set `credentials`). */
  fetch?: typeof globalThis.fetch;
  /** Send protobuf binary rather than JSON. Default true. */
  useBinaryFormat?: boolean;
}

/**
 * Connect to Flame from a browser. `url` is the base URL of a gRPC-Web (or
 * Connect) endpoint in front of Flame, e.g. "https://flame.example.com".
 * Returns the same {@link Connection} as `@flame-ts/node`.
 */
export function connect(url: string, options: WebConnectOptions = {}): Connection {
  const baseUrl = parseBaseUrl(url);
  const transport = createTransport(baseUrl, options);
  return new Connection(transport, options);
}

function parseBaseUrl(url: string): string {
  // "host:port" parses as a URL whose scheme is "host:"; catch it first.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url.trim())) {
    throw invalidConfig(
      `invalid Flame URL "${url}": give an absolute http:// or https:// URL, e.g. "http://${url.trim() || "localhost:8080"}"`,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch (cause) {
    throw invalidConfig(`invalid Flame URL "${url}": ${String(cause)}`, cause);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw invalidConfig(
      `invalid Flame URL "${url}": a browser reaches Flame over http: or https:, not ${parsed.protocol}`,
    );
  }
  // Connect appends "/flame.v1.Frontend/Method"; a trailing slash would double it.
  return parsed.href.replace(/\/+$/, "");
}

function createTransport(baseUrl: string, options: WebConnectOptions): Transport {
  const common = {
    baseUrl,
    useBinaryFormat: options.useBinaryFormat ?? true,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  };
  switch (options.protocol ?? "grpc-web") {
    case "grpc-web":
      return createGrpcWebTransport(common);
    case "connect":
      return createConnectTransport(common);
    default:
      throw invalidConfig(`unknown protocol "${String(options.protocol)}"`);
  }
}

function invalidConfig(message: string, cause?: unknown): FlameError {
  return new FlameError(message, { kind: "invalid-config", cause });
}
