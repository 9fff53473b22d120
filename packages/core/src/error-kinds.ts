import type { FlameErrorKind } from "./errors.js";

// What Flame's messages mean, per storage engine. Flame keeps its state with
// sqlite (its built-in default), the filesystem ("fs": flmadm, the Helm chart
// and Flame's own CI) or in memory ("none"), and the engine decides the
// status code and the words of many refusals. Each phrase below is matched
// case-insensitively against the server's message.

interface Phrase {
  text: string;
  kind: FlameErrorKind;
}

const phrase = (text: string, kind: FlameErrorKind): Phrase => ({ text, kind });

/**
 * sqlite's constraint errors for a task whose session does not exist or is
 * closed: both give the same words, so a GetSession tells them apart.
 */
export const unknownOrClosedSessionPhrase = "not null constraint failed: tasks.ssn_id";

// INTERNAL is where sqlite's constraint errors and every engine's session
// state refusals arrive.
const internalPhrases: Phrase[] = [
  // sqlite: a duplicate session id or application name.
  phrase("unique constraint failed", "already-exists"),
  // sqlite: CreateSession or OpenSession naming an unknown application.
  phrase("not null constraint failed: sessions.application", "not-found"),
  // sqlite: CreateTask on an unknown or a closed session (a GetSession decides).
  phrase(unknownOrClosedSessionPhrase, "not-found"),
  // every engine: CloseSession while tasks run.
  phrase("cannot close session", "invalid-state"),
  // fs: DeleteSession on an open session.
  phrase("cannot delete open session", "invalid-state"),
  // sqlite: DeleteSession on an open session, or one with unfinished
  // (Cancelled counts) tasks.
  phrase("failed to close session", "invalid-state"),
  phrase("open tasks in the session", "invalid-state"),
  phrase("non-terminal task", "invalid-state"),
  phrase("is not open", "invalid-state"),
  phrase("already exist", "already-exists"),
  phrase("not found", "not-found"),
];

// INVALID_ARGUMENT carries both a bad configuration and a bad state; these
// mark the state ones. A spec mismatch in OpenSession is the caller's
// configuration, so it stays "invalid-config".
const invalidArgumentPhrases: Phrase[] = [
  // sqlite "session <id> is not open", fs "Session <id> is not open".
  phrase("not open", "invalid-state"),
  // fs: CreateTask on a closed session.
  phrase("closed session", "invalid-state"),
  phrase("is closed", "invalid-state"),
  phrase("cannot close", "invalid-state"),
  phrase("running tasks", "invalid-state"),
];

// Application calls fold every failure into an in-band return_code -1; the
// message is all there is. Order matters: "N open sessions in the
// application" names no missing thing, "no rows returned" (sqlite's update
// of an unknown name) does.
const resultPhrases: Phrase[] = [
  // sqlite "N open sessions in the application", fs "... has open sessions".
  phrase("open sessions", "invalid-state"),
  // fs "Application '<n>' already exists", sqlite "UNIQUE constraint failed".
  phrase("already exist", "already-exists"),
  phrase("unique constraint failed", "already-exists"),
  phrase("not found", "not-found"),
  // fs: unregistering an unknown name.
  phrase("no such file or directory", "not-found"),
  // sqlite: updating an unknown name.
  phrase("no rows returned", "not-found"),
];

function match(message: string, phrases: Phrase[]): FlameErrorKind | undefined {
  const lower = message.toLowerCase();
  return phrases.find((p) => lower.includes(p.text))?.kind;
}

/** The kind of an INTERNAL error, from its message. */
export function kindOfInternal(message: string): FlameErrorKind {
  return match(message, internalPhrases) ?? "internal";
}

/** The kind of an INVALID_ARGUMENT error, from its message. */
export function kindOfInvalidArgument(message: string): FlameErrorKind {
  return match(message, invalidArgumentPhrases) ?? "invalid-config";
}

// The none engine's UpdateApplication of an unknown name: "application <n>".
const bareApplication = /^application <[^>]*>$/i;

/** The kind of an in-band application failure (`Result.return_code < 0`). */
export function kindOfResultMessage(message: string): FlameErrorKind {
  if (bareApplication.test(message.trim())) return "not-found";
  return match(message, resultPhrases) ?? "invalid-config";
}
