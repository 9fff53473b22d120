import { Code, ConnectError } from "@connectrpc/connect";
import { kindOfInternal, kindOfInvalidArgument, kindOfResultMessage } from "./error-kinds.js";

/** What went wrong, in words a program can switch on. */
export type FlameErrorKind =
  | "not-found"
  | "already-exists"
  | "invalid-config"
  | "invalid-state"
  | "internal"
  | "unavailable"
  | "cancelled"
  | "deadline-exceeded"
  | "permission-denied"
  | "unauthenticated"
  | "invalid-input"
  | "bind-failed";

export interface FlameErrorInit {
  kind: FlameErrorKind;
  /** The Frontend method, e.g. "CreateTask"; absent for local checks. */
  method?: string | undefined;
  /** The server's own words, when the server said something. */
  serverMessage?: string | undefined;
  /** The Connect code when the error came over gRPC. */
  code?: Code | undefined;
  cause?: unknown;
}

// A brand instead of `instanceof`: two copies of this package (a bundled
// one and a workspace one, say) still recognise each other's errors.
const brand = Symbol.for("@flame-ts/core.FlameError");

/**
 * The one error type the client throws. `kind` is derived from the gRPC
 * code (flame-rs folds every code into "Network"; we keep it) and from
 * in-band failures such as `Result.return_code < 0`.
 *
 * Flame's status codes and words depend on its storage engine (sqlite, fs
 * or none), and several refusals reach the wire as INTERNAL or
 * INVALID_ARGUMENT whatever they are about. The client reads the message
 * too (error-kinds.ts), so each kind means the same on every engine: a
 * duplicate is `"already-exists"`, a closed session `"invalid-state"`, an
 * unknown one `"not-found"`; where Flame's words do not say which, one
 * GetSession decides. `code` stays what was sent and `serverMessage` keeps
 * the server's words.
 */
export class FlameError extends Error {
  override readonly name = "FlameError";
  readonly kind: FlameErrorKind;
  readonly method: string | undefined;
  readonly serverMessage: string | undefined;
  readonly code: Code | undefined;
  declare readonly [brand]: true;

  constructor(message: string, init: FlameErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.kind = init.kind;
    this.method = init.method;
    this.serverMessage = init.serverMessage;
    this.code = init.code;
    Object.defineProperty(this, brand, { value: true });
  }

  /** True for a FlameError from any copy of this package; optionally of one kind. */
  static is(value: unknown, kind?: FlameErrorKind): value is FlameError {
    if (typeof value !== "object" || value === null) return false;
    if ((value as { [brand]?: unknown })[brand] !== true) return false;
    return kind === undefined || (value as FlameError).kind === kind;
  }
}

/** Maps a Connect code (and the server's message) to a kind. */
export function kindOfCode(code: Code, message: string): FlameErrorKind {
  switch (code) {
    case Code.NotFound:
      return "not-found";
    case Code.AlreadyExists:
      return "already-exists";
    case Code.InvalidArgument:
      return kindOfInvalidArgument(message);
    case Code.FailedPrecondition:
      return "invalid-state";
    case Code.Unavailable:
    case Code.ResourceExhausted:
    case Code.Aborted:
      return "unavailable";
    case Code.Unknown:
      // Browsers report a refused connection as Unknown "Failed to fetch".
      return isFetchFailure(message) ? "unavailable" : "internal";
    case Code.Canceled:
      return "cancelled";
    case Code.DeadlineExceeded:
      return "deadline-exceeded";
    case Code.PermissionDenied:
      return "permission-denied";
    case Code.Unauthenticated:
      return "unauthenticated";
    case Code.Internal:
      return kindOfInternal(message);
    default:
      return "internal";
  }
}

/** A browser's words for a connection that failed ("Failed to fetch" and kin). */
export function isFetchFailure(message: string): boolean {
  const lower = message.toLowerCase();
  return (
    lower.includes("failed to fetch") ||
    lower.includes("networkerror") ||
    lower.includes("load failed")
  );
}

// The kind in words, where its name does not say it well enough ("not-found"
// is "not found").
const describeKind: Partial<Record<FlameErrorKind, string>> = {
  "invalid-config": "invalid configuration",
  internal: "internal error",
  unavailable: "server unavailable",
};

/**
 * Wraps anything a call threw into a FlameError naming the method. Only the
 * code and the server's message are used: request headers (tokens) never
 * reach the message.
 */
export function toFlameError(err: unknown, method: string): FlameError {
  if (FlameError.is(err)) return err;
  const ce = ConnectError.from(err);
  const kind = kindOfCode(ce.code, ce.rawMessage);
  const serverMessage = ce.rawMessage || undefined;
  return new FlameError(failureMessage(method, kind, serverMessage), {
    kind,
    method,
    serverMessage,
    code: ce.code,
    cause: err,
  });
}

function failureMessage(method: string, kind: FlameErrorKind, detail: string | undefined): string {
  const what = describeKind[kind] ?? kind.replace("-", " ");
  return `${method} failed (${what})${detail ? `: ${detail}` : ""}`;
}

/**
 * The same failure with the kind a further look found (a GetSession, say),
 * `why` in front of the server's words; `code`, `serverMessage` and `cause`
 * are kept.
 */
export function withKind(err: FlameError, kind: FlameErrorKind, why: string): FlameError {
  const method = err.method ?? "call";
  const detail = err.serverMessage ? `${why} (Flame said: ${err.serverMessage})` : why;
  return new FlameError(failureMessage(method, kind, detail), {
    kind,
    method: err.method,
    serverMessage: err.serverMessage,
    code: err.code,
    cause: err.cause,
  });
}

/** An in-band `Result` with `return_code < 0` (application calls). */
export function resultError(method: string, returnCode: number, message: string | undefined) {
  const detail = message ? `: ${message}` : ` (return code ${returnCode})`;
  return new FlameError(`${method} failed${detail}`, {
    kind: kindOfResultMessage(message ?? ""),
    method,
    serverMessage: message,
  });
}

/** A reply the client cannot use: the server broke the contract (kind "internal"). */
export function replyError(method: string, problem: string): FlameError {
  return new FlameError(`${method} failed (internal error): ${problem}`, {
    kind: "internal",
    method,
  });
}

/** An error found before anything was sent (bad arguments, bad strings). */
export function inputError(message: string, method?: string): FlameError {
  return new FlameError(method ? `${method}: ${message}` : message, {
    kind: "invalid-input",
    method,
  });
}
