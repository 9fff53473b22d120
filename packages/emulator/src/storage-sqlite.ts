import { create } from "@bufbuild/protobuf";
import { ApplicationSpecSchema, Shim } from "@flame-ts/core/gen";
import { internal, invalidState, notFound } from "./errors.js";
import type { StorageEngine } from "./storage.js";

// sqlx's Display for the constraint errors SQLite raises.
const missingSession = "error returned from database: (code: 1299) NOT NULL constraint failed";
const noRows = "no rows returned by a query that expected to return at least one row";
const openSessions = (count: number) => `${count} open sessions in the application`;

/** Flame's built-in default engine: rows in SQLite, refusals as SQL constraint errors. */
export const sqliteStorage: StorageEngine = {
  kind: "sqlite",
  wholeSeconds: true,
  keepsEventSnapshot: false,
  persistsSessions: true,
  unregisterKeepsSessions: false,
  emptyBytesAbsent: false,

  registerRefusal: (_name, exists) =>
    exists
      ? "failed to register application: error returned from database: (code: 1555) UNIQUE constraint failed: applications.name"
      : undefined,
  updateRefusal: (_name, exists, open) => {
    if (open > 0) return openSessions(open);
    return exists ? undefined : `failed to update application: ${noRows}`;
  },
  // Deleting a name that is not there deletes nothing, successfully.
  unregisterRefusal: (_name, _exists, open) => (open > 0 ? openSessions(open) : undefined),
  applicationNotFound: (name) => notFound(`application <${name}> not found`),
  // Its INSERT and UPDATE leave out shim and image: they read back as Host and absent.
  storedSpec: (given) =>
    create(ApplicationSpecSchema, { ...given, shim: Shim.Host, image: undefined }),

  unknownApplication: () => internal(`${missingSession}: sessions.application`),
  duplicateSession: () =>
    internal("error returned from database: (code: 1555) UNIQUE constraint failed: sessions.id"),
  openNotFound: (id) => notFound(`session <${id}> not found`),
  openClosed: (id) => invalidState(`session <${id}> is not open`),
  deleteRefusal: (session) => {
    // Cancelled counts as open here (`state NOT IN (Failed, Succeed)`).
    if (session.unfinished > 0) return internal(`${session.unfinished} open tasks in the session`);
    return session.open ? internal(`failed to close session: ${noRows}`) : undefined;
  },
  taskUnknownSession: () => internal(`${missingSession}: tasks.ssn_id`),
  taskClosedSession: () => internal(`${missingSession}: tasks.ssn_id`),
};
