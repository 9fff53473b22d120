import { notFound } from "./errors.js";
import type { StorageEngine } from "./storage.js";

/** Flame's `none` engine: nothing stored, the session manager's memory is all there is. */
export const noneStorage: StorageEngine = {
  kind: "none",
  wholeSeconds: false,
  keepsEventSnapshot: true,
  persistsSessions: false,
  unregisterKeepsSessions: false,
  emptyBytesAbsent: false,

  // A second registration overwrites the first.
  registerRefusal: () => undefined,
  updateRefusal: (name, exists) => (exists ? undefined : `application <${name}>`),
  unregisterRefusal: () => undefined,
  applicationNotFound: (name) => notFound(`application <${name}>`),
  storedSpec: (given) => given,

  // Nothing checks: the session dangles, and a duplicate id replaces the session.
  unknownApplication: () => undefined,
  duplicateSession: () => undefined,
  openNotFound: (id) => notFound(`session <${id}>`),
  openClosed: (id, withSpec) => (withSpec ? undefined : notFound(`session <${id}>`)),
  deleteRefusal: () => undefined,
  taskUnknownSession: (id) => notFound(id),
  taskClosedSession: () => undefined,
};
