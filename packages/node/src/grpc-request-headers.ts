import type { OutgoingHttpHeaders } from "node:http2";
import type { DescMethod } from "@bufbuild/protobuf";

/** What a call accepts as extra headers (the DOM's `HeadersInit`). */
export type HeaderInit = ConstructorParameters<typeof Headers>[0];

/** What we send as `user-agent` unless the caller sets one. */
export const userAgent = "flame-ts/0.1.0 (grpc; node)";

// Headers we own: a caller's value for these is ignored.
const protocolHeaders = new Set(["content-type", "te", "grpc-timeout", "grpc-accept-encoding"]);

/**
 * gRPC request headers for one transport. Node's `request()` copies the
 * object it is given before returning, so a call without headers of its
 * own fills in one of two shared objects (with and without a deadline)
 * instead of building one.
 */
export class GrpcRequestHeaders {
  private readonly plain: OutgoingHttpHeaders;
  private readonly timed: OutgoingHttpHeaders;
  private readonly paths = new WeakMap<DescMethod, string>();

  /** `pathPrefix`: the base URL's path, if the server is mounted below `/`. */
  constructor(private readonly pathPrefix = "") {
    this.plain = {
      ":method": "POST",
      ":path": "/",
      "content-type": "application/grpc+proto",
      te: "trailers",
      "user-agent": userAgent,
    };
    this.timed = { ...this.plain, "grpc-timeout": "" };
  }

  /** `/package.Service/Method`. */
  path(method: DescMethod): string {
    let path = this.paths.get(method);
    if (path === undefined) {
      path = `${this.pathPrefix}/${method.parent.typeName}/${method.name}`;
      this.paths.set(method, path);
    }
    return path;
  }

  /**
   * Headers for one call: to be passed to `request()` right away (the
   * shared objects are overwritten by the next call).
   */
  forCall(
    method: DescMethod,
    timeoutMs: number | undefined,
    extra: HeaderInit | undefined,
  ): OutgoingHttpHeaders {
    let headers: OutgoingHttpHeaders;
    if (extra === undefined) {
      headers = timeoutMs === undefined ? this.plain : this.timed;
    } else {
      headers = { ...(timeoutMs === undefined ? this.plain : this.timed) };
      new Headers(extra).forEach((value, key) => {
        if (!protocolHeaders.has(key) && key.charCodeAt(0) !== 58 /* ":" */) headers[key] = value;
      });
    }
    headers[":path"] = this.path(method);
    if (timeoutMs !== undefined) headers["grpc-timeout"] = encodeTimeout(timeoutMs);
    return headers;
  }
}

/**
 * `grpc-timeout`: at most 8 digits and a unit, so long deadlines are sent
 * in coarser units (rounded up: the server must not stop before we do).
 */
export function encodeTimeout(timeoutMs: number): string {
  const ms = Math.max(1, Math.ceil(timeoutMs));
  if (ms < 1e8) return `${ms}m`;
  const s = Math.ceil(ms / 1000);
  if (s < 1e8) return `${s}S`;
  const m = Math.ceil(s / 60);
  if (m < 1e8) return `${m}M`;
  return `${Math.min(Math.ceil(m / 60), 99_999_999)}H`;
}
