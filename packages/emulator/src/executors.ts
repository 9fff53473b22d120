import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type ExecutorSchema,
  ExecutorState,
  type NodeSchema,
  NodeState,
  Shim,
} from "@flame-ts/core/gen";
import { randomUuid } from "./uuid.js";

export interface Resources {
  cpu: bigint;
  memory: bigint;
  gpu: number;
}

export interface ExecutorRecord {
  id: string;
  state: ExecutorState;
  sessionId: string | undefined;
  resreq: Resources;
  busy: boolean;
}

export interface NodeDescription {
  hostname: string;
  capacity: Resources;
  arch: string;
  os: string;
  addresses: { type: string; address: string }[];
}

/**
 * The executors of the emulator's one node. An executor is created when work
 * needs one (up to `max`), bound to a session while it runs that session's
 * tasks, and back to Idle when the session has nothing left to run.
 */
export class ExecutorPool {
  private readonly executors = new Map<string, ExecutorRecord>();
  private readonly idle = new Set<ExecutorRecord>();
  /** Bound executors not running a task, by session id. */
  private readonly freeBound = new Map<string, Set<ExecutorRecord>>();
  constructor(
    private readonly node: NodeDescription,
    private readonly max: number,
  ) {}

  /** An executor for one task of `sessionId`, bound to it; undefined when every executor is busy. */
  acquire(sessionId: string, resreq: Resources): ExecutorRecord | undefined {
    const own = this.freeBound.get(sessionId);
    if (own && own.size > 0) {
      const executor = own.values().next().value as ExecutorRecord;
      this.takeFree(executor);
      executor.busy = true;
      return executor;
    }
    let executor: ExecutorRecord | undefined;
    if (this.idle.size > 0) {
      executor = this.idle.values().next().value as ExecutorRecord;
      this.idle.delete(executor);
    } else if (this.executors.size < this.max) {
      executor = {
        // Flame names executors with a UUID v4.
        id: randomUuid(),
        state: ExecutorState.ExecutorIdle,
        sessionId: undefined,
        resreq,
        busy: false,
      };
      this.executors.set(executor.id, executor);
    } else {
      // Every executor is bound elsewhere: take a free one from another session.
      for (const set of this.freeBound.values()) {
        const candidate = set.values().next().value;
        if (candidate) {
          executor = candidate;
          this.takeFree(candidate);
          break;
        }
      }
      if (!executor) return undefined;
    }
    executor.state = ExecutorState.ExecutorBound;
    executor.sessionId = sessionId;
    executor.resreq = resreq;
    executor.busy = true;
    return executor;
  }

  /** The task on `executor` ended; it stays bound to its session for the next task. */
  free(executor: ExecutorRecord): void {
    executor.busy = false;
    if (executor.state !== ExecutorState.ExecutorBound || executor.sessionId === undefined) return;
    let set = this.freeBound.get(executor.sessionId);
    if (!set) {
      set = new Set();
      this.freeBound.set(executor.sessionId, set);
    }
    set.add(executor);
  }

  /** Unbind the free executors of a session that has nothing left to run. */
  releaseSession(sessionId: string): void {
    const set = this.freeBound.get(sessionId);
    if (!set) return;
    this.freeBound.delete(sessionId);
    for (const executor of set) {
      executor.state = ExecutorState.ExecutorIdle;
      executor.sessionId = undefined;
      this.idle.add(executor);
    }
  }

  /** A cluster with no executors (`maxExecutors: 0`) has no node and runs nothing. */
  canRun(): boolean {
    return this.max > 0;
  }

  hasFreeBound(sessionId: string): boolean {
    return (this.freeBound.get(sessionId)?.size ?? 0) > 0;
  }

  clear(): void {
    this.executors.clear();
    this.idle.clear();
    this.freeBound.clear();
  }

  private takeFree(executor: ExecutorRecord): void {
    if (executor.sessionId === undefined) return;
    const set = this.freeBound.get(executor.sessionId);
    set?.delete(executor);
    if (set && set.size === 0) this.freeBound.delete(executor.sessionId);
  }

  listExecutors(): MessageInitShape<typeof ExecutorSchema>[] {
    return [...this.executors.values()].map((executor) => ({
      metadata: { id: executor.id, name: executor.id },
      spec: { node: this.node.hostname, resreq: executor.resreq, shim: Shim.Host },
      status: {
        state: executor.state,
        ...(executor.sessionId !== undefined ? { sessionId: executor.sessionId } : {}),
      },
    }));
  }

  /**
   * The node as Flame reports it: `allocatable` is the capacity (the
   * executor manager reports it so and nothing subtracts), no addresses
   * unless given, and a heartbeat time of 0.
   */
  describeNode(): MessageInitShape<typeof NodeSchema> | undefined {
    if (!this.canRun()) return undefined;
    const { capacity } = this.node;
    return {
      metadata: { id: this.node.hostname, name: this.node.hostname },
      spec: { hostname: this.node.hostname },
      status: {
        state: NodeState.Ready,
        capacity,
        allocatable: capacity,
        info: { arch: this.node.arch, os: this.node.os },
        addresses: this.node.addresses,
        lastHeartbeatTime: 0n,
      },
    };
  }
}
