import type { CallOptions } from "./call-options.js";
import type { Channel } from "./channel.js";
import { inputError } from "./errors.js";
import type {
  Executor as ExecutorMessage,
  ExecutorState,
  Node as NodeMessage,
  NodeState,
  Shim,
} from "./gen/flame/v1/types_pb.js";
import { ResourceRequirement } from "./resource-requirement.js";

/** An executor (a slot on a node that runs one session's tasks at a time). */
export interface Executor {
  id: string;
  node: string;
  resreq: ResourceRequirement;
  shim: Shim;
  state: ExecutorState;
  /** The session it is bound to, if any. */
  sessionId?: string;
}

/** A node of the cluster. */
export interface FlameNode {
  name: string;
  hostname: string;
  state: NodeState;
  capacity: ResourceRequirement;
  allocatable: ResourceRequirement;
  info: { arch: string; os: string };
  addresses: { type: string; address: string }[];
  /**
   * Flame sends this one in seconds, unlike every other time; converted here.
   * Absent when the server sends 0, as Flame's session manager always does.
   */
  lastHeartbeatTime?: Date;
}

const none = /* @__PURE__ */ new ResourceRequirement();

export function toExecutor(message: ExecutorMessage): Executor {
  const executor: Executor = {
    id: message.metadata?.id ?? "",
    node: message.spec?.node ?? "",
    resreq: message.spec?.resreq ? ResourceRequirement.fromMessage(message.spec.resreq) : none,
    // Literals (Shim.Host, ExecutorState.ExecutorUnknown): naming an enum
    // member would put the whole enum object in every browser bundle.
    shim: message.spec?.shim ?? (0 as Shim),
    state: message.status?.state ?? (0 as ExecutorState),
  };
  if (message.status?.sessionId !== undefined) executor.sessionId = message.status.sessionId;
  return executor;
}

export function toNode(message: NodeMessage): FlameNode {
  const status = message.status;
  const node: FlameNode = {
    name: message.metadata?.name ?? "",
    hostname: message.spec?.hostname ?? "",
    state: status?.state ?? (0 as NodeState), // NodeState.Unknown
    capacity: status?.capacity ? ResourceRequirement.fromMessage(status.capacity) : none,
    allocatable: status?.allocatable ? ResourceRequirement.fromMessage(status.allocatable) : none,
    info: { arch: status?.info?.arch ?? "", os: status?.info?.os ?? "" },
    addresses: (status?.addresses ?? []).map((a) => ({ type: a.type, address: a.address })),
  };
  const heartbeat = Number(status?.lastHeartbeatTime ?? 0n);
  if (heartbeat !== 0) node.lastHeartbeatTime = new Date(heartbeat * 1000);
  return node;
}

/** The cluster's executors, with the session each is bound to, if any. */
export async function listExecutors(channel: Channel, options?: CallOptions): Promise<Executor[]> {
  const list = await channel.rpc.unary(
    "ListExecutor",
    (o) => channel.client.listExecutor({}, o),
    options,
    true,
  );
  return list.executors.map(toExecutor);
}

/** The cluster's nodes with their capacity and what is still allocatable. */
export async function listNodes(channel: Channel, options?: CallOptions): Promise<FlameNode[]> {
  const list = await channel.rpc.unary(
    "ListNodes",
    (o) => channel.client.listNodes({}, o),
    options,
    true,
  );
  return list.nodes.map(toNode);
}

/** One node; FlameError "not-found" if there is none by this name. */
export async function getNode(
  channel: Channel,
  name: string,
  options?: CallOptions,
): Promise<FlameNode> {
  const response = await channel.rpc.unary(
    "GetNode",
    (o) => channel.client.getNode({ name }, o),
    options,
    true,
  );
  if (response.node === undefined) {
    throw inputError(`no node in the answer for "${name}"`, "GetNode");
  }
  return toNode(response.node);
}
