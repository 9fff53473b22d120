import { Code, ConnectError } from "@connectrpc/connect";

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
  | "invalid-input";

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
 * Flame raises some refusals about a session's state in its storage layer,
 * so they reach the wire as INTERNAL: closing a session while tasks run
 * ("Cannot close session with running tasks"), deleting a session that is
 * not closed ("Cannot delete open session") or that still has unfinished
 * tasks ("... non-terminal tasks"), and creating a task in a closed session
 * ("session <id> is not open"). The client smooths this over: such an
 * INTERNAL error gets kind `"invalid-state"`, as the same refusal sent as
 * INVALID_ARGUMENT would; `code` stays `Code.Internal` and `serverMessage`
 * keeps the server's words.
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

// Real Flame sends both invalid configuration and invalid state as
// INVALID_ARGUMENT; these phrases from its messages mark the state ones.
// A spec mismatch in OpenSession is the caller's configuration, so it stays
// "invalid-config".
const invalidStatePhrases = ["not open", "cannot close", "running tasks", "is closed"];

function kindOfInvalidArgument(message: string): FlameErrorKind {
  const lower = message.toLowerCase();
  return invalidStatePhrases.some((p) => lower.includes(p)) ? "invalid-state" : "invalid-config";
}

// Refusals about a session's state that Flame's storage raises, and that
// therefore arrive as INTERNAL (matched case-insensitively).
const internalStatePhrases = [
  "cannot close session",
  "cannot delete open session",
  "non-terminal task",
  "is not open",
];

function kindOfInternal(message: string): FlameErrorKind {
  const lower = message.toLowerCase();
  return internalStatePhrases.some((p) => lower.includes(p)) ? "invalid-state" : "internal";
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
  const detail = serverMessage ? `: ${serverMessage}` : "";
  return new FlameError(
    `${method} failed (${describeKind[kind] ?? kind.replace("-", " ")})${detail}`,
    {
      kind,
      method,
      serverMessage,
      code: ce.code,
      cause: err,
    },
  );
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

// Application calls fold every failure into return_code -1; the message is
// all we have to tell a missing application from a bad spec.
function kindOfResultMessage(message: string): FlameErrorKind {
  const lower = message.toLowerCase();
  if (lower.includes("not found")) return "not-found";
  if (lower.includes("already exist")) return "already-exists";
  return "invalid-config";
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
