import { type Client, createClient, type Transport } from "@connectrpc/connect";
import type { Application, ApplicationAttributes } from "./application.js";
import { toApplication, toApplicationSpec } from "./application.js";
import type { CallOptions } from "./call-options.js";
import type { Executor, FlameNode } from "./cluster.js";
import { toExecutor, toNode } from "./cluster.js";
import type { TaskCodec } from "./codec.js";
import { bytesCodec } from "./codec.js";
import { inputError, resultError } from "./errors.js";
import {
  CreateSessionRequestSchema,
  Frontend,
  OpenSessionRequestSchema,
  RegisterApplicationRequestSchema,
  UpdateApplicationRequestSchema,
} from "./gen/flame/v1/frontend_pb.js";
import type { Result, Session as SessionMessage } from "./gen/flame/v1/types_pb.js";
import { configureBindWatch } from "./internal/bind-watch.js";
import { sortByCreation } from "./internal/list-order.js";
import { checkRequestSize, roughSize } from "./internal/request-size.js";
import { Rpc, type WireCallOptions } from "./internal/rpc.js";
import { decideBySession } from "./internal/session-check.js";
import type { WatchOptions } from "./internal/watch-hub.js";
import { configureWatches } from "./internal/watch-hub.js";
import type { Logger, LogLevel } from "./logger.js";
import { resolveLogger } from "./logger.js";
import { ResourceRequirement } from "./resource-requirement.js";
import type { RetryOptions } from "./retry.js";
import { resolveRetry } from "./retry.js";
import { Session } from "./session.js";
import { generateSessionId } from "./session-id.js";

export interface ConnectionOptions {
  /** Default deadline of unary calls in ms (default 30,000). Streams have none unless asked. */
  timeoutMs?: number;
  /** A Logger, a level for a console logger, or `false`; default: `FLAME_LOG` or silent. */
  logger?: Logger | LogLevel | false;
  /** Retries of idempotent reads on transient failures; `false` turns them off. */
  retry?: RetryOptions | false;
  /** Called once by `close()`: the transport package frees its sockets here. */
  onClose?: () => void | Promise<void>;
  /**
   * How `watchTask` is served: up to `maxStreams` (default 64) watches get a
   * WatchTask stream each; past that, a session's watches share one ListTask
   * poll (`pollIntervalMs` 250, backing off to `maxPollIntervalMs` 2000).
   */
  watch?: WatchOptions;
  /**
   * Largest request sent, in bytes (default 4 MiB, Flame's limit: it refuses
   * a bigger one). A bigger request fails with kind "invalid-input" before
   * it is sent. Raise it only for a server that accepts more.
   */
  maxRequestBytes?: number;
  /**
   * While a task is awaited in Pending (`run`, `invoke`, `runMany`, `runAll`,
   * `runTask`, `watchTask`), its session is read every `bindCheckMs`
   * (default 5,000; 0 turns it off). When Flame reports that it gave up
   * starting the session's application (session event 1002 after the 1001
   * bind failures) and the session runs nothing, the wait fails with kind
   * "bind-failed" and Flame's messages instead of waiting for ever.
   */
  bindCheckMs?: number;
}

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
  /** Codecs for task input and output (default: bytes). */
  codec?: TaskCodec<In, Out>;
}

const utf8 = /* @__PURE__ */ new TextEncoder();

/**
 * A client of one Flame cluster over any Connect transport (gRPC over
 * HTTP/2 from `@flame-ts/node`, gRPC-Web from `@flame-ts/web`, or an
 * in-memory router transport in tests). Every call takes a last
 * `CallOptions` (signal, timeoutMs, headers) and fails with `FlameError`.
 */
export class Connection {
  /** The raw generated Connect client, for anything this API does not cover. */
  readonly client: Client<typeof Frontend>;
  private readonly rpc: Rpc;
  private readonly onClose: (() => void | Promise<void>) | undefined;
  private closing: Promise<void> | undefined;

  constructor(transport: Transport, options: ConnectionOptions = {}) {
    this.client = createClient(Frontend, transport);
    this.rpc = new Rpc(
      this.client,
      options.timeoutMs ?? 30_000,
      resolveRetry(options.retry),
      resolveLogger(options.logger),
    );
    this.onClose = options.onClose;
    this.rpc.maxRequestBytes = options.maxRequestBytes ?? this.rpc.maxRequestBytes;
    if (options.watch !== undefined) configureWatches(this.rpc, options.watch);
    configureBindWatch(this.rpc, options.bindCheckMs);
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.rpc.closed;
  }

  // Applications -----------------------------------------------------------

  /**
   * Registers an application. Flame reports failure in-band; it is thrown
   * here as FlameError: a name taken is "already-exists" (the none engine
   * overwrites instead).
   */
  async registerApplication(
    name: string,
    attrs: ApplicationAttributes = {},
    options?: CallOptions,
  ): Promise<void> {
    const request = { name, application: toApplicationSpec(attrs) };
    const method = "RegisterApplication";
    checkRequestSize(method, this.rpc.maxRequestBytes, RegisterApplicationRequestSchema, request);
    await this.resultCall(method, (o) => this.client.registerApplication(request, o), options);
  }

  /**
   * Replaces an application's spec (fields left out return to their
   * defaults). In-band failures are thrown as FlameError: an unknown name is
   * "not-found"; sqlite and fs refuse while the application has open
   * sessions ("invalid-state").
   */
  async updateApplication(
    name: string,
    attrs: ApplicationAttributes = {},
    options?: CallOptions,
  ): Promise<void> {
    const request = { name, application: toApplicationSpec(attrs) };
    const method = "UpdateApplication";
    checkRequestSize(method, this.rpc.maxRequestBytes, UpdateApplicationRequestSchema, request);
    await this.resultCall(method, (o) => this.client.updateApplication(request, o), options);
  }

  /**
   * Removes an application, and Flame drops its sessions. In-band failures
   * are thrown as FlameError: sqlite and fs refuse while it has open
   * sessions ("invalid-state"); fs refuses an unknown name ("not-found"),
   * sqlite and none accept it.
   */
  async unregisterApplication(name: string, options?: CallOptions): Promise<void> {
    await this.resultCall(
      "UnregisterApplication",
      (o) => this.client.unregisterApplication({ name }, o),
      options,
    );
  }

  /** One application; FlameError "not-found" if there is none by this name. */
  async getApplication(name: string, options?: CallOptions): Promise<Application> {
    const message = await this.rpc.unary(
      "GetApplication",
      (o) => this.client.getApplication({ name }, o),
      options,
      true,
    );
    return toApplication(message);
  }

  /**
   * Every registered application (Flame starts with flmexec, flmping and
   * flmrun), oldest first, then by name: Flame lists them in no particular
   * order.
   */
  async listApplications(options?: CallOptions): Promise<Application[]> {
    const list = await this.rpc.unary(
      "ListApplication",
      (o) => this.client.listApplication({}, o),
      options,
      true,
    );
    return sortByCreation(list.applications.map(toApplication), (a) => a.name);
  }

  /** flame-rs's name for `listApplications`. */
  listApplication(options?: CallOptions): Promise<Application[]> {
    return this.listApplications(options);
  }

  // Sessions ---------------------------------------------------------------

  /**
   * Creates a session; without `id`, one is generated as Flame's SDKs do
   * (`<application>-<6 random [A-Za-z0-9]>`). Never retried. An unknown
   * application fails with kind "not-found" and a duplicate id with
   * "already-exists" on sqlite and fs (sqlite sends both as INTERNAL storage
   * errors, `code` says so); Flame's none engine accepts both, and a
   * duplicate id replaces the session.
   */
  async createSession<In = Uint8Array, Out = Uint8Array>(
    attrs: SessionAttributes<In, Out>,
    options?: CallOptions,
  ): Promise<Session<In, Out>> {
    const spec = toSessionSpec(attrs, "CreateSession");
    const sessionId = attrs.id ?? generateSessionId(attrs.application);
    const request = { sessionId, session: spec };
    checkSessionRequest("CreateSession", this.rpc.maxRequestBytes, request);
    const message = await this.rpc.unary(
      "CreateSession",
      (o) => this.client.createSession(request, o),
      options,
      false,
    );
    return this.wrap(message, attrs.codec, sessionId);
  }

  /**
   * Opens an existing session. With attributes that name an application,
   * the spec is sent too, and Flame opens it if it matches or creates it if
   * it does not exist (that is `openOrCreateSession`). A session that does
   * not exist fails with "not-found"; a closed one with "invalid-state"
   * (where Flame's answer does not say which, one GetSession decides); a
   * spec that differs with "invalid-config".
   */
  async openSession<In = Uint8Array, Out = Uint8Array>(
    id: string,
    attrs?: Partial<SessionAttributes<In, Out>>,
    options?: CallOptions,
  ): Promise<Session<In, Out>> {
    const spec =
      attrs?.application === undefined
        ? undefined
        : toSessionSpec(attrs as SessionAttributes<In, Out>, "OpenSession");
    const request = { sessionId: id, session: spec };
    checkSessionRequest("OpenSession", this.rpc.maxRequestBytes, request);
    const message = await this.rpc
      .unary("OpenSession", (o) => this.client.openSession(request, o), options, false)
      .catch(async (err: unknown) => {
        throw await decideBySession(this.rpc, err, id, options);
      });
    return this.wrap(message, attrs?.codec, id);
  }

  /**
   * Opens the session if it exists with the same spec (application, resreq,
   * min/max instances and priority are compared; common data is not), or
   * creates it.
   */
  openOrCreateSession<In = Uint8Array, Out = Uint8Array>(
    id: string,
    attrs: Omit<SessionAttributes<In, Out>, "id">,
    options?: CallOptions,
  ): Promise<Session<In, Out>> {
    return this.openSession(id, attrs, options);
  }

  /** One session (closed ones included). */
  async getSession<In = Uint8Array, Out = Uint8Array>(
    id: string,
    options?: CallOptions & { codec?: TaskCodec<In, Out> },
  ): Promise<Session<In, Out>> {
    const message = await this.rpc.unary(
      "GetSession",
      (o) => this.client.getSession({ sessionId: id }, o),
      options,
      true,
    );
    return this.wrap(message, options?.codec, id);
  }

  /**
   * Every session, closed ones included, oldest first, then by id: Flame
   * lists them in no particular order.
   */
  async listSessions(options?: CallOptions): Promise<Session[]> {
    const list = await this.rpc.unary(
      "ListSession",
      (o) => this.client.listSession({}, o),
      options,
      true,
    );
    return sortByCreation(
      list.sessions.map((m) => this.wrap(m, undefined)),
      (s) => s.id,
    );
  }

  /** flame-rs's name for `listSessions`. */
  listSession(options?: CallOptions): Promise<Session[]> {
    return this.listSessions(options);
  }

  /**
   * Closes a session (idempotent): pending tasks become Cancelled. Fails
   * with kind "invalid-state" while tasks are running (Flame sends that as
   * INTERNAL "Cannot close session with running tasks"; `code` says so).
   */
  async closeSession(id: string, options?: CallOptions): Promise<Session> {
    const message = await this.rpc.unary(
      "CloseSession",
      (o) => this.client.closeSession({ sessionId: id }, o),
      options,
      false,
    );
    return this.wrap(message, undefined);
  }

  /**
   * Deletes a closed session and its tasks. sqlite and fs refuse a session
   * that is not closed, as INTERNAL: close it first (sqlite also refuses a
   * closed one with Cancelled tasks, for good). The refusal has kind
   * "invalid-state"; an unknown id is "not-found". The none engine deletes
   * open sessions too.
   */
  async deleteSession(id: string, options?: CallOptions): Promise<Session> {
    const message = await this.rpc.unary(
      "DeleteSession",
      (o) => this.client.deleteSession({ sessionId: id }, o),
      options,
      false,
    );
    return this.wrap(message, undefined);
  }

  // Cluster ----------------------------------------------------------------

  /** The cluster's executors, with the session each is bound to, if any. */
  async listExecutors(options?: CallOptions): Promise<Executor[]> {
    const list = await this.rpc.unary(
      "ListExecutor",
      (o) => this.client.listExecutor({}, o),
      options,
      true,
    );
    return list.executors.map(toExecutor);
  }

  /** The cluster's nodes with their capacity and what is still allocatable. */
  async listNodes(options?: CallOptions): Promise<FlameNode[]> {
    const list = await this.rpc.unary(
      "ListNodes",
      (o) => this.client.listNodes({}, o),
      options,
      true,
    );
    return list.nodes.map(toNode);
  }

  /** One node; FlameError "not-found" if there is none by this name. */
  async getNode(name: string, options?: CallOptions): Promise<FlameNode> {
    const response = await this.rpc.unary(
      "GetNode",
      (o) => this.client.getNode({ name }, o),
      options,
      true,
    );
    if (response.node === undefined) {
      throw inputError(`no node in the answer for "${name}"`, "GetNode");
    }
    return toNode(response.node);
  }

  /**
   * Closes the connection: aborts calls and streams in flight, calls
   * `onClose` once, and makes later calls fail with a FlameError of kind
   * "cancelled" that says the connection is closed.
   */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.rpc.close();
      this.closing = Promise.resolve().then(() => this.onClose?.());
    }
    return this.closing;
  }

  /** An application call: Flame answers with a Result, failure in-band; never retried. */
  private async resultCall(
    method: string,
    call: (options: WireCallOptions) => Promise<Result>,
    options: CallOptions | undefined,
  ): Promise<void> {
    const result = await this.rpc.unary(method, call, options, false);
    if (result.returnCode < 0) throw resultError(method, result.returnCode, result.message);
  }

  /** A Session from its message; `id` is the one asked for, kept when the reply leaves it out. */
  private wrap<In, Out>(
    message: SessionMessage,
    codec: TaskCodec<In, Out> | undefined,
    id?: string,
  ) {
    const session = new Session<In, Out>(
      this.rpc,
      this,
      message,
      codec ?? (bytesCodec as unknown as TaskCodec<In, Out>),
    );
    if (session.id === "" && id !== undefined) session.id = id;
    return session;
  }
}

/** Refuses a CreateSession/OpenSession request over the limit (common data is the big part). */
function checkSessionRequest(
  method: string,
  limit: number,
  request: { sessionId: string; session?: ReturnType<typeof toSessionSpec> | undefined },
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

function toSessionSpec(attrs: SessionAttributes<unknown, unknown>, method: string) {
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
