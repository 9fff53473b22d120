import type { IncomingHttpHeaders } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import type { BearerTokenCheck } from "./bearer-token.js";
import type { CorsPolicy } from "./cors.js";

/** Why the gateway refused a call before it reached the upstream. */
export type RejectionReason = "origin" | "unauthenticated" | "method";

export class CallRejected extends ConnectError {
  constructor(
    message: string,
    code: Code,
    readonly reason: RejectionReason,
  ) {
    super(message, code);
  }
}

/** Reads one request header (lower-case name); `Headers` is one. */
export interface HeaderReader {
  get(name: string): string | null;
}

/** A view of Node's header object as a `HeaderReader` (the first value of a repeated header). */
export function headerReaderOf(headers: IncomingHttpHeaders): HeaderReader {
  return {
    get(name) {
      const value = headers[name];
      if (value === undefined) return null;
      return Array.isArray(value) ? (value[0] ?? null) : value;
    },
  };
}

/**
 * The checks every call passes before anything is sent upstream: the
 * browser origin (when the request has one), the bearer token (when one is
 * configured) and the method allowlist.
 */
export class CallGuard {
  constructor(
    private readonly cors: CorsPolicy,
    private readonly token: BearerTokenCheck | undefined,
    private readonly allowedMethods: ReadonlySet<string>,
  ) {}

  get consumesAuthorization(): boolean {
    return this.token !== undefined;
  }

  /** Throws a CallRejected (never echoing what the client sent) or returns. */
  check(methodName: string, header: HeaderReader): void {
    const origin = header.get("origin");
    // A browser page from an origin we do not grant must not get in by a
    // request that needs no preflight; non-browser clients send no Origin.
    if (origin !== null && !this.cors.allows(origin)) {
      throw new CallRejected("origin not allowed by the gateway", Code.PermissionDenied, "origin");
    }
    if (this.token !== undefined && !this.token.accepts(header.get("authorization"))) {
      throw new CallRejected(
        "missing or invalid bearer token",
        Code.Unauthenticated,
        "unauthenticated",
      );
    }
    if (!this.allowedMethods.has(methodName)) {
      throw new CallRejected(
        `method ${methodName} is not allowed by the gateway`,
        Code.PermissionDenied,
        "method",
      );
    }
  }
}
