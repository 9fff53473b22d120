import { create } from "@bufbuild/protobuf";
import { ApplicationSpecSchema } from "@flame-ts/core/gen";
import { alreadyExists, internal, invalidState, notFound } from "./errors.js";
import type { StorageEngine } from "./storage.js";

const noSuchFile = "No such file or directory (os error 2)";
const applicationMissing = (name: string) => `Application ${name} not found: ${noSuchFile}`;

/** Flame's filesystem engine (`fs://`): what flmadm, the Helm chart and Flame's CI deploy. */
export const fsStorage: StorageEngine = {
  kind: "fs",
  wholeSeconds: true,
  keepsEventSnapshot: false,
  persistsSessions: true,
  unregisterKeepsSessions: true,
  emptyBytesAbsent: true,

  registerRefusal: (name, exists) => (exists ? `Application '${name}' already exists` : undefined),
  updateRefusal: (name, exists, open) => {
    if (!exists) return applicationMissing(name);
    return open > 0 ? `Cannot update application '${name}': has open sessions` : undefined;
  },
  unregisterRefusal: (name, exists, open) => {
    if (open > 0) return `Cannot unregister application '${name}': has open sessions`;
    return exists ? undefined : `Failed to delete application '${name}': ${noSuchFile}`;
  },
  applicationNotFound: (name) => notFound(applicationMissing(name)),
  // UpdateApplication rewrites every field but the shim.
  storedSpec: (given, previous) =>
    previous ? create(ApplicationSpecSchema, { ...given, shim: previous.shim }) : given,

  unknownApplication: (application) => notFound(applicationMissing(application)),
  duplicateSession: (id) => alreadyExists(`Session '${id}' already exists`),
  openNotFound: (id) => notFound(`Session ${id} not found`),
  openClosed: (id) => invalidState(`Session ${id} is not open`),
  deleteRefusal: (session) => {
    if (session.open) return internal("Cannot delete open session");
    return session.nonTerminal > 0
      ? internal("Cannot delete session with non-terminal tasks")
      : undefined;
  },
  taskUnknownSession: (id) => notFound(`Session ${id} not found: ${noSuchFile}`),
  taskClosedSession: () => invalidState("Cannot create task in closed session"),
};
