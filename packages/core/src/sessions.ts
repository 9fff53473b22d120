import type { CallOptions } from "./call-options.js";
import type { Channel } from "./channel.js";
import type { TaskCodec } from "./codec.js";
import { inputError } from "./errors.js";
import {
  CreateSessionRequestSchema,
  OpenSessionRequestSchema,
} from "./gen/flame/v1/frontend_pb.js";
import type { Session as SessionMessage } from "./gen/flame/v1/types_pb.js";
import { sortByCreation } from "./internal/list-order.js";
import { checkRequestSize, roughSize } from "./internal/request-size.js";
import type { WireCallOptions } from "./internal/rpc.js";
import { decideBySession } from "./internal/session-check.js";
import { ResourceRequirement } from "./resource-requirement.js";
import { generateSessionId } from "./session-id.js";
import { type SessionInfo, toSessionInfo } from "./session-info.js";

/** What a session is created (or opened) with. */
export interface SessionAttributes<In = Uint8Array, Out = Uint8Array> {
  /** Default: `<application>-<6 random [A-Za-z0-9]>`, as Flame's SDKs make it. */
  id?: string;
  application: string;
  /** Handed to every instance; a string is sent as UTF-8. */
  commonData?: Uint8Array | string;
  minInstances?: number;
  /** Absent: unlimited. */
  maxInstances?: number;
  /** 0 (default) is the lowest. */
  priority?: number;
  /** A ResourceRequirement or its string form `"cpu=1,mem=1g"`; absent: the cluster default. */
  resreq?: ResourceRequirement | string;
  /** Codecs for task input and output (default: bytes). Used by a `Session`. */
  codec?: TaskCodec<In, Out>;
}

/**
 * Creates a session; without `id`, one is generated as Flame's SDKs do
 * (`<application>-<6 random [A-Za-z0-9]>`). Never retried. An unknown
 * application fails with kind "not-found" and a duplicate id with
 * "already-exists" on sqlite and fs (sqlite sends both as INTERNAL storage
 * errors, `code` says so); Flame's none engine accepts both, and a
 * duplicate id replaces the session.
 */
export async function createSession(
  channel: Channel,
  attrs: SessionAttributes<unknown, unknown>,
  options?: CallOptions,
): Promise<SessionInfo> {
  const { rpc } = channel;
  const method = "CreateSession";
  const spec = toSessionSpec(attrs, method);
  const sessionId = attrs.id ?? generateSessionId(attrs.application);
  const request = { sessionId, session: spec };
  checkSessionRequest(method, rpc.maxRequestBytes, request);
  const message = await rpc.unary(
    method,
    (o) => rpc.client.createSession(request, o),
    options,
    false,
  );
  return toSessionInfo(message, sessionId);
}

/**
 * Opens an existing session. A session that does not exist fails with
 * "not-found"; a closed one with "invalid-state" (where Flame's answer does
 * not say which, one GetSession decides).
 */
export function openSession(
  channel: Channel,
  id: string,
  options?: CallOptions,
): Promise<SessionInfo> {
  return open(channel, id, undefined, options);
}

/**
 * Opens the session if it exists with the same spec (application, resreq,
 * min/max instances and priority are compared; common data is not), or
 * creates it. A spec that differs fails with "invalid-config".
 */
export function openOrCreateSession(
  channel: Channel,
  id: string,
  attrs: Omit<SessionAttributes<unknown, unknown>, "id">,
  options?: CallOptions,
): Promise<SessionInfo> {
  const spec = toSessionSpec(attrs, "OpenSession");
  checkSessionRequest("OpenSession", channel.rpc.maxRequestBytes, { sessionId: id, session: spec });
  return open(channel, id, spec, options);
}

/** One session (closed ones included); "not-found" if there is none. */
export async function getSession(
  channel: Channel,
  id: string,
  options?: CallOptions,
): Promise<SessionInfo> {
  return byId(channel, "GetSession", id, (r, o) => channel.client.getSession(r, o), options, true);
}

/**
 * Every session, closed ones included, oldest first, then by id: Flame
 * lists them in no particular order.
 */
export async function listSessions(
  channel: Channel,
  options?: CallOptions,
): Promise<SessionInfo[]> {
  const { rpc } = channel;
  const list = await rpc.unary("ListSession", (o) => rpc.client.listSession({}, o), options, true);
  return sortByCreation(
    list.sessions.map((m) => toSessionInfo(m)),
    (s) => s.id,
  );
}

/**
 * Closes a session (idempotent): pending tasks become Cancelled. Fails
 * with kind "invalid-state" while tasks are running (Flame sends that as
 * INTERNAL "Cannot close session with running tasks"; `code` says so).
 */
export async function closeSession(
  channel: Channel,
  id: string,
  options?: CallOptions,
): Promise<SessionInfo> {
  const close = (r: ById, o: WireCallOptions) => channel.client.closeSession(r, o);
  return byId(channel, "CloseSession", id, close, options, false);
}

/**
 * Deletes a closed session and its tasks. sqlite and fs refuse a session
 * that is not closed, as INTERNAL: close it first (sqlite also refuses a
 * closed one with Cancelled tasks, for good). The refusal has kind
 * "invalid-state"; an unknown id is "not-found". The none engine deletes
 * open sessions too.
 */
export async function deleteSession(
  channel: Channel,
  id: string,
  options?: CallOptions,
): Promise<SessionInfo> {
  const remove = (r: ById, o: WireCallOptions) => channel.client.deleteSession(r, o);
  return byId(channel, "DeleteSession", id, remove, options, false);
}

type SessionSpecInit = ReturnType<typeof toSessionSpec>;
type ById = { sessionId: string };

/** A call that names one session and answers with it. */
async function byId(
  channel: Channel,
  method: string,
  id: string,
  call: (request: ById, options: WireCallOptions) => Promise<SessionMessage>,
  options: CallOptions | undefined,
  idempotent: boolean,
): Promise<SessionInfo> {
  const request = { sessionId: id };
  const message = await channel.rpc.unary(method, (o) => call(request, o), options, idempotent);
  return toSessionInfo(message, id);
}

async function open(
  channel: Channel,
  id: string,
  spec: SessionSpecInit | undefined,
  options: CallOptions | undefined,
): Promise<SessionInfo> {
  const { rpc } = channel;
  const method = "OpenSession";
  const request = { sessionId: id, session: spec };
  const message: SessionMessage = await rpc
    .unary(method, (o) => rpc.client.openSession(request, o), options, false)
    .catch(async (err: unknown) => {
      throw await decideBySession(rpc, err, id, options);
    });
  return toSessionInfo(message, id);
}

/**
 * Refuses a CreateSession/OpenSession request over the limit (common data
 * is the big part; an OpenSession without a spec is never near it).
 */
function checkSessionRequest(
  method: string,
  limit: number,
  request: { sessionId: string; session?: SessionSpecInit | undefined },
): void {
  const spec = request.session;
  const rough = roughSize(
    spec?.commonData?.byteLength ?? 0,
    request.sessionId,
    spec?.application ?? "",
  );
  const schema = method === "OpenSession" ? OpenSessionRequestSchema : CreateSessionRequestSchema;
  checkRequestSize(method, limit, schema, request, rough);
}

const utf8 = /* @__PURE__ */ new TextEncoder();

function toSessionSpec(attrs: Omit<SessionAttributes<unknown, unknown>, "id">, method: string) {
  if (!attrs.application) throw inputError("an application name is required", method);
  const spec: {
    application: string;
    batchSize: number;
    minInstances: number;
    priority: number;
    commonData?: Uint8Array;
    maxInstances?: number;
    resreq?: { cpu: bigint; memory: bigint; gpu: number };
  } = {
    application: attrs.application,
    batchSize: 1,
    minInstances: attrs.minInstances ?? 0,
    priority: attrs.priority ?? 0,
  };
  if (attrs.commonData !== undefined) {
    spec.commonData =
      typeof attrs.commonData === "string" ? utf8.encode(attrs.commonData) : attrs.commonData;
  }
  if (attrs.maxInstances !== undefined) spec.maxInstances = attrs.maxInstances;
  if (attrs.resreq !== undefined) {
    const resreq =
      typeof attrs.resreq === "string" ? ResourceRequirement.parse(attrs.resreq) : attrs.resreq;
    spec.resreq = resreq.toMessage();
  }
  return spec;
}
