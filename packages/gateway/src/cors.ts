import type { IncomingHttpHeaders } from "node:http";
import { cors } from "@connectrpc/connect";

/**
 * Browser origins the gateway grants CORS to: exact origins
 * (`"https://dash.example.com"`), regular expressions tested against the
 * whole Origin header, or the `"localhost"` preset (http and https on
 * localhost, 127.0.0.1 and [::1], any port) for development.
 */
export type AllowedOrigins = "localhost" | readonly (string | RegExp)[];

const localhostPattern = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/;

/** Response headers of a minimal response object, HTTP/1.1 or HTTP/2 compat. */
interface HeaderSink {
  setHeader(name: string, value: string | readonly string[]): unknown;
}

/**
 * Decides which origins get CORS grants and writes the grant headers.
 * An origin that is not allowed gets no Access-Control-* header at all, so
 * the browser refuses to let its page read anything.
 */
export class CorsPolicy {
  readonly #exact = new Set<string>();
  readonly #patterns: RegExp[] = [];
  readonly #allowHeaders: string;
  readonly #exposeHeaders: string;

  constructor(
    origins: AllowedOrigins | undefined,
    extra: { allowedHeaders?: readonly string[]; exposedHeaders?: readonly string[] } = {},
  ) {
    for (const origin of normaliseOrigins(origins)) {
      if (origin instanceof RegExp) {
        // A global or sticky RegExp keeps state between test() calls; drop those flags.
        this.#patterns.push(new RegExp(origin.source, origin.flags.replace(/[gy]/g, "")));
      } else {
        this.#exact.add(origin);
      }
    }
    this.#allowHeaders = unique([
      ...cors.allowedHeaders,
      "Authorization",
      ...(extra.allowedHeaders ?? []),
    ]).join(", ");
    this.#exposeHeaders = unique([...cors.exposedHeaders, ...(extra.exposedHeaders ?? [])]).join(
      ", ",
    );
  }

  /** Whether the policy grants anything at all (no origins = no CORS). */
  get enabled(): boolean {
    return this.#exact.size > 0 || this.#patterns.length > 0;
  }

  allows(origin: string | undefined): boolean {
    if (origin === undefined || origin === "") return false;
    return this.#exact.has(origin) || this.#patterns.some((p) => p.test(origin));
  }

  /**
   * Answers a CORS preflight. Allowed origins get 204 with the grants;
   * anything else gets 403 and no Access-Control-* headers.
   */
  answerPreflight(
    headers: IncomingHttpHeaders,
    res: HeaderSink & { statusCode: number; end(): unknown },
  ): void {
    const origin = headerValue(headers.origin);
    res.setHeader("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
    if (
      !this.allows(origin) ||
      headerValue(headers["access-control-request-method"]) === undefined
    ) {
      res.statusCode = 403;
      res.end();
      return;
    }
    res.setHeader("Access-Control-Allow-Origin", origin as string);
    res.setHeader("Access-Control-Allow-Methods", cors.allowedMethods.join(", "));
    res.setHeader("Access-Control-Allow-Headers", this.#allowHeaders);
    res.setHeader("Access-Control-Max-Age", "7200");
    // Chrome's Private Network Access: a public page calling a gateway on a
    // private address asks first; allowed origins may.
    if (headerValue(headers["access-control-request-private-network"]) === "true") {
      res.setHeader("Access-Control-Allow-Private-Network", "true");
    }
    res.statusCode = 204;
    res.end();
  }

  /** Adds the grant to an actual (non-preflight) response, if the origin is allowed. */
  grant(headers: IncomingHttpHeaders, res: HeaderSink): void {
    const origin = headerValue(headers.origin);
    res.setHeader("Vary", "Origin");
    if (!this.allows(origin)) return;
    res.setHeader("Access-Control-Allow-Origin", origin as string);
    res.setHeader("Access-Control-Expose-Headers", this.#exposeHeaders);
  }
}

function normaliseOrigins(origins: AllowedOrigins | undefined): (string | RegExp)[] {
  if (origins === undefined) return [];
  if (origins === "localhost") return [localhostPattern];
  if (!Array.isArray(origins)) {
    throw new TypeError('allowedOrigins must be "localhost" or a list of origins / RegExps');
  }
  return origins.map((origin) => {
    if (origin instanceof RegExp) return origin;
    if (origin === "localhost") return localhostPattern;
    if (origin === "*") {
      throw new TypeError(
        'allowedOrigins: "*" is not accepted; list the origins, or pass a RegExp if you really mean any',
      );
    }
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || parsed.origin !== origin) {
      throw new TypeError(
        `allowedOrigins: ${JSON.stringify(origin)} is not an origin (expected scheme://host[:port], no path or trailing slash)`,
      );
    }
    return origin;
  });
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function unique(names: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const name of names) {
    const key = name.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(name);
  }
  return out;
}
