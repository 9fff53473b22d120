import type { ConnectError } from "@connectrpc/connect";
import type { ApplicationSpec } from "@flame-ts/core/gen";
import { fsStorage } from "./storage-fs.js";
import { noneStorage } from "./storage-none.js";
import { sqliteStorage } from "./storage-sqlite.js";

/**
 * Flame's storage engines (`cluster.storage`). What a client sees depends on
 * which one a cluster runs: `fs` is what `flmadm install`, the Helm chart and
 * Flame's own CI deploy; `sqlite` is the built-in default; `none` keeps
 * nothing on disk.
 */
export type EmulatorStorage = "sqlite" | "fs" | "none";

export const EMULATOR_STORAGES: readonly EmulatorStorage[] = ["sqlite", "fs", "none"];

export const isEmulatorStorage = (value: unknown): value is EmulatorStorage =>
  EMULATOR_STORAGES.includes(value as EmulatorStorage);

/** A session as a storage engine's checks see it. */
export interface StoredSession {
  open: boolean;
  /** Tasks not Succeed or Failed (Pending, Running and Cancelled). */
  unfinished: number;
  /** Tasks Pending or Running. */
  nonTerminal: number;
}

/**
 * The answers that differ between Flame's storage engines, each worded and
 * coded as that engine's Flame reports it. `undefined` means "go ahead".
 * Strings are in-band failures (`Result.message`); errors go on the wire.
 */
export interface StorageEngine {
  readonly kind: EmulatorStorage;
  /** Session, task and application times are stored in whole seconds. */
  readonly wholeSeconds: boolean;
  /** WatchTask/ListTask messages keep the events of the last GetTask (none) rather than none. */
  readonly keepsEventSnapshot: boolean;
  /** Sessions dropped from memory (evicted) stay in storage and still count there. */
  readonly persistsSessions: boolean;
  /** Unregistering an application leaves its closed sessions in storage (fs). */
  readonly unregisterKeepsSessions: boolean;
  /** Empty input, output and common data are stored as absent (fs). */
  readonly emptyBytesAbsent: boolean;

  registerRefusal(name: string, exists: boolean): string | undefined;
  updateRefusal(name: string, exists: boolean, openSessions: number): string | undefined;
  unregisterRefusal(name: string, exists: boolean, openSessions: number): string | undefined;
  applicationNotFound(name: string): ConnectError;
  /** The spec the engine keeps for `given` (sqlite forgets shim and image; fs keeps the first shim). */
  storedSpec(given: ApplicationSpec, previous: ApplicationSpec | undefined): ApplicationSpec;

  /** CreateSession (or OpenSession creating) with an application that does not exist. */
  unknownApplication(application: string): ConnectError | undefined;
  /** CreateSession on an id already stored; `undefined` replaces the session (none). */
  duplicateSession(id: string): ConnectError | undefined;
  /** OpenSession without a spec on an id that is not stored. */
  openNotFound(id: string): ConnectError;
  /** OpenSession on a closed session; `undefined` creates a new one over it (none, with a spec). */
  openClosed(id: string, withSpec: boolean): ConnectError | undefined;
  deleteRefusal(session: StoredSession): ConnectError | undefined;
  /** CreateTask on a session that is not stored. */
  taskUnknownSession(id: string): ConnectError;
  /** CreateTask on a closed session; `undefined` adds it, Pending for ever (none). */
  taskClosedSession(id: string): ConnectError | undefined;
}

export const storageEngine = (kind: EmulatorStorage): StorageEngine => {
  switch (kind) {
    case "sqlite":
      return sqliteStorage;
    case "fs":
      return fsStorage;
    case "none":
      return noneStorage;
    default:
      throw new Error(`unknown storage ${String(kind)}; expected one of sqlite, fs, none`);
  }
};
