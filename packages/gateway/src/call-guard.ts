import { Code, ConnectError } from "@connectrpc/connect";
import type { BearerTokenCheck } from "./bearer-token.js";
import type { CorsPolicy } from "./cors.js";

/** Why the gateway refused a call before it reached the upstream. */
export type RejectionReason = "origin" | "unauthenticated" | "method" | "busy";

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

/**
 * The checks every call passes before anything is sent upstream: the
 * bearer token (when one is configured), the browser origin (when the
 * request has one) and the method allowlist.
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
    // The token first: it costs one hash, and a caller without it learns
    // nothing else (not even whether its origin would pass).
    if (this.token !== undefined && !this.token.accepts(header.get("authorization"))) {
      throw new CallRejected(
        "missing or invalid bearer token",
        Code.Unauthenticated,
        "unauthenticated",
      );
    }
    const origin = header.get("origin");
    // A browser page from an origin we do not grant must not get in by a
    // request that needs no preflight; non-browser clients send no Origin.
    if (origin !== null && !this.cors.allows(origin)) {
      throw new CallRejected("origin not allowed by the gateway", Code.PermissionDenied, "origin");
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
