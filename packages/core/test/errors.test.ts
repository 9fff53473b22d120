import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { resultError } from "../src/errors.js";
import { FlameError, kindOfCode, toFlameError } from "../src/index.js";

describe("kindOfCode", () => {
  const table: [Code, string, string][] = [
    [Code.NotFound, "session x not found", "not-found"],
    [Code.AlreadyExists, "exists", "already-exists"],
    [Code.InvalidArgument, "session s is not open", "invalid-state"],
    [Code.InvalidArgument, "Cannot close session with running tasks", "invalid-state"],
    [
      Code.InvalidArgument,
      "session s spec mismatch: priority differs (expected 1, got 2)",
      "invalid-config",
    ],
    [Code.InvalidArgument, "session spec is required", "invalid-config"],
    // sqlite's constraint errors, per situation.
    [
      Code.Internal,
      "error returned from database: (code: 1555) UNIQUE constraint failed: sessions.id",
      "already-exists",
    ],
    [
      Code.Internal,
      "error returned from database: (code: 1299) NOT NULL constraint failed: sessions.application",
      "not-found",
    ],
    [
      Code.Internal,
      "failed to close session: no rows returned by a query that expected to return at least one row",
      "invalid-state",
    ],
    [Code.Internal, "2 open tasks in the session", "invalid-state"],
    [Code.Internal, "session s not found", "not-found"],
    [Code.Internal, "disk I/O error", "internal"],
    // fs's words for a closed session.
    [Code.InvalidArgument, "Cannot create task in closed session", "invalid-state"],
    [Code.InvalidArgument, "Session s is not open", "invalid-state"],
    [Code.InvalidArgument, "invalid task id", "invalid-config"],
    // Flame's storage raises these state refusals; they arrive as INTERNAL.
    [Code.Internal, "Cannot close session with running tasks", "invalid-state"],
    [Code.Internal, "Cannot delete open session", "invalid-state"],
    [Code.Internal, "CANNOT DELETE OPEN SESSION", "invalid-state"],
    [Code.Internal, "Cannot delete session with non-terminal tasks", "invalid-state"],
    [Code.Internal, "session s is not open", "invalid-state"],
    [Code.Unavailable, "connect ECONNREFUSED", "unavailable"],
    [Code.Unknown, "Failed to fetch", "unavailable"],
    [Code.Unknown, "something odd", "internal"],
    [Code.Canceled, "", "cancelled"],
    [Code.DeadlineExceeded, "", "deadline-exceeded"],
    [Code.PermissionDenied, "", "permission-denied"],
    [Code.Unauthenticated, "", "unauthenticated"],
  ];
  for (const [code, message, kind] of table) {
    it(`${Code[code]} "${message}" is ${kind}`, () => {
      expect(kindOfCode(code, message)).toBe(kind);
    });
  }
});

describe("in-band application failures, in each storage engine's words", () => {
  const table: [string, string][] = [
    // Register, name taken: fs, sqlite.
    ["Application 'a' already exists", "already-exists"],
    [
      "failed to register application: error returned from database: (code: 1555) UNIQUE constraint failed: applications.name",
      "already-exists",
    ],
    // Update or unregister with open sessions: fs, sqlite.
    ["Cannot update application 'a': has open sessions", "invalid-state"],
    ["Cannot unregister application 'a': has open sessions", "invalid-state"],
    ["3 open sessions in the application", "invalid-state"],
    // Update of an unknown name: fs, sqlite, none.
    ["Application a not found: No such file or directory (os error 2)", "not-found"],
    [
      "failed to update application: no rows returned by a query that expected to return at least one row",
      "not-found",
    ],
    ["application <a>", "not-found"],
    // Unregister of an unknown name: fs.
    ["Failed to delete application 'a': No such file or directory (os error 2)", "not-found"],
    // Flame's name rules.
    ["application name cannot be empty", "invalid-config"],
    [
      "application name contains invalid characters (only alphanumeric, '-', '_', '.' allowed): a/b",
      "invalid-config",
    ],
  ];
  for (const [message, kind] of table) {
    it(`"${message}" is ${kind}`, () => {
      const err = resultError("UpdateApplication", -1, message);
      expect(err.kind).toBe(kind);
      expect(err.serverMessage).toBe(message);
    });
  }
});

describe("toFlameError", () => {
  it("names the method and the server's message, keeps code and cause", () => {
    const cause = new ConnectError("task 9 not found", Code.NotFound);
    const err = toFlameError(cause, "GetTask");
    expect(err).toBeInstanceOf(FlameError);
    expect(err.kind).toBe("not-found");
    expect(err.code).toBe(Code.NotFound);
    expect(err.method).toBe("GetTask");
    expect(err.serverMessage).toBe("task 9 not found");
    expect(err.cause).toBe(cause);
    expect(err.message).toBe("GetTask failed (not found): task 9 not found");
  });

  it("never copies headers or metadata into the message", () => {
    const cause = new ConnectError(
      "denied",
      Code.PermissionDenied,
      new Headers({ authorization: "Bearer s3cr3t" }),
    );
    const err = toFlameError(cause, "ListSession");
    expect(err.message).not.toContain("s3cr3t");
    expect(JSON.stringify({ ...err, message: err.message })).not.toContain("s3cr3t");
  });

  it("an INTERNAL state refusal is invalid-state but keeps its code and message", () => {
    const cause = new ConnectError("Cannot delete open session", Code.Internal);
    const err = toFlameError(cause, "DeleteSession");
    expect(err.kind).toBe("invalid-state");
    expect(err.code).toBe(Code.Internal);
    expect(err.serverMessage).toBe("Cannot delete open session");
    expect(err.message).toBe("DeleteSession failed (invalid state): Cannot delete open session");
  });

  it("returns a FlameError unchanged", () => {
    const e = new FlameError("x", { kind: "internal" });
    expect(toFlameError(e, "GetTask")).toBe(e);
  });

  it("wraps non-Connect errors as internal", () => {
    expect(toFlameError(new Error("boom"), "GetTask").kind).toBe("internal");
  });
});

describe("FlameError.is", () => {
  it("recognises the brand across copies, not the class", () => {
    const e = new FlameError("x", { kind: "not-found" });
    expect(FlameError.is(e)).toBe(true);
    expect(FlameError.is(e, "not-found")).toBe(true);
    expect(FlameError.is(e, "internal")).toBe(false);
    // What a second copy of the package would make: same Symbol.for brand.
    const foreign = Object.defineProperty(new Error("y"), Symbol.for("@flame-ts/core.FlameError"), {
      value: true,
    });
    expect(FlameError.is(foreign)).toBe(true);
    expect(FlameError.is(new Error("z"))).toBe(false);
    expect(FlameError.is(null)).toBe(false);
  });
});
