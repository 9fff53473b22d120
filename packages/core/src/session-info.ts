import type { Session as SessionMessage, SessionState } from "./gen/flame/v1/types_pb.js";
import type { ResourceRequirement } from "./resource-requirement.js";
import type { TaskEvent } from "./task.js";
import { msToDate, toEvents } from "./task.js";

/**
 * A session as plain data: its metadata and counters as the call that
 * returned it saw them. The standalone functions return it; a
 * {@link Session} carries the same fields.
 */
export interface SessionInfo {
  id: string;
  application: string;
  state: SessionState;
  creationTime: Date;
  completionTime?: Date | undefined;
  pending: number;
  running: number;
  succeed: number;
  failed: number;
  cancelled: number;
  minInstances: number;
  /** Absent: unlimited. */
  maxInstances?: number | undefined;
  /** 0 is the lowest. */
  priority: number;
  /**
   * Absent: the cluster's default. Plain numbers here (a `Session` holds a
   * {@link ResourceRequirement}, which parses and prints them).
   */
  resreq?: { cpu: number; memory: bigint; gpu: number } | undefined;
  commonData?: Uint8Array | undefined;
  events: TaskEvent[];
}

/** A SessionInfo from its message; `id` (the one asked for) fills in a reply that leaves it out. */
export function toSessionInfo(message: SessionMessage, id = ""): SessionInfo {
  const spec = message.spec;
  const status = message.status;
  return {
    id: message.metadata?.id || id,
    application: spec?.application ?? "",
    // A literal (SessionState.Open): naming the member would bundle the enum.
    state: status?.state ?? (0 as SessionState),
    creationTime: msToDate(status?.creationTime ?? 0n),
    completionTime:
      status?.completionTime === undefined ? undefined : msToDate(status.completionTime),
    pending: status?.pending ?? 0,
    running: status?.running ?? 0,
    succeed: status?.succeed ?? 0,
    failed: status?.failed ?? 0,
    cancelled: status?.cancelled ?? 0,
    minInstances: spec?.minInstances ?? 0,
    maxInstances: spec?.maxInstances,
    priority: spec?.priority ?? 0,
    resreq: spec?.resreq && {
      cpu: Number(spec.resreq.cpu),
      memory: spec.resreq.memory,
      gpu: spec.resreq.gpu,
    },
    commonData: spec?.commonData,
    events: toEvents(status?.events),
  };
}
