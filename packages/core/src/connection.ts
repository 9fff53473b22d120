import type { Application, ApplicationAttributes } from "./application.js";
import * as applications from "./applications.js";
import type { CallOptions } from "./call-options.js";
import { Channel } from "./channel.js";
import type { Executor, FlameNode } from "./cluster.js";
import * as cluster from "./cluster.js";
import type { TaskCodec } from "./codec.js";
import { Session } from "./session.js";
import type { SessionInfo } from "./session-info.js";
import type { SessionAttributes } from "./sessions.js";
import * as sessions from "./sessions.js";

/**
 * A client of one Flame cluster over any Connect transport (gRPC over
 * HTTP/2 from `@flame-ts/node`, gRPC-Web from `@flame-ts/web`, or an
 * in-memory router transport in tests): a {@link Channel} with every call
 * as a method. Every call takes a last `CallOptions` (signal, timeoutMs,
 * headers) and fails with `FlameError`. Each method is also a standalone
 * function taking the connection first (`listSessions(connection)`), for
 * browser bundles that want only the calls they make.
 */
export class Connection extends Channel {
  // Applications -----------------------------------------------------------

  /** See the standalone `registerApplication`. */
  registerApplication(
    name: string,
    attrs?: ApplicationAttributes,
    options?: CallOptions,
  ): Promise<void> {
    return applications.registerApplication(this, name, attrs, options);
  }

  /** See the standalone `updateApplication`. */
  updateApplication(
    name: string,
    attrs?: ApplicationAttributes,
    options?: CallOptions,
  ): Promise<void> {
    return applications.updateApplication(this, name, attrs, options);
  }

  /** See the standalone `unregisterApplication`. */
  unregisterApplication(name: string, options?: CallOptions): Promise<void> {
    return applications.unregisterApplication(this, name, options);
  }

  /** One application; FlameError "not-found" if there is none by this name. */
  getApplication(name: string, options?: CallOptions): Promise<Application> {
    return applications.getApplication(this, name, options);
  }

  /** Every registered application, oldest first, then by name. */
  listApplications(options?: CallOptions): Promise<Application[]> {
    return applications.listApplications(this, options);
  }

  /** flame-rs's name for `listApplications`. */
  listApplication(options?: CallOptions): Promise<Application[]> {
    return this.listApplications(options);
  }

  // Sessions ---------------------------------------------------------------

  /** Creates a session; see the standalone `createSession`. */
  async createSession<In = Uint8Array, Out = Uint8Array>(
    attrs: SessionAttributes<In, Out>,
    options?: CallOptions,
  ): Promise<Session<In, Out>> {
    return this.wrap(await sessions.createSession(this, attrs, options), attrs.codec);
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
    const info =
      attrs?.application === undefined
        ? await sessions.openSession(this, id, options)
        : await sessions.openOrCreateSession(
            this,
            id,
            attrs as SessionAttributes<In, Out>,
            options,
          );
    return this.wrap(info, attrs?.codec);
  }

  /**
   * Opens the session if it exists with the same spec (application, resreq,
   * min/max instances and priority are compared; common data is not), or
   * creates it.
   */
  async openOrCreateSession<In = Uint8Array, Out = Uint8Array>(
    id: string,
    attrs: Omit<SessionAttributes<In, Out>, "id">,
    options?: CallOptions,
  ): Promise<Session<In, Out>> {
    return this.wrap(await sessions.openOrCreateSession(this, id, attrs, options), attrs.codec);
  }

  /** One session (closed ones included). */
  async getSession<In = Uint8Array, Out = Uint8Array>(
    id: string,
    options?: CallOptions & { codec?: TaskCodec<In, Out> },
  ): Promise<Session<In, Out>> {
    return this.wrap(await sessions.getSession(this, id, options), options?.codec);
  }

  /** Every session, closed ones included, oldest first, then by id. */
  async listSessions(options?: CallOptions): Promise<Session[]> {
    return (await sessions.listSessions(this, options)).map((info) => this.wrap(info));
  }

  /** flame-rs's name for `listSessions`. */
  listSession(options?: CallOptions): Promise<Session[]> {
    return this.listSessions(options);
  }

  /** Closes a session (idempotent); see the standalone `closeSession`. */
  async closeSession(id: string, options?: CallOptions): Promise<Session> {
    return this.wrap(await sessions.closeSession(this, id, options));
  }

  /** Deletes a closed session and its tasks; see the standalone `deleteSession`. */
  async deleteSession(id: string, options?: CallOptions): Promise<Session> {
    return this.wrap(await sessions.deleteSession(this, id, options));
  }

  // Cluster ----------------------------------------------------------------

  /** The cluster's executors, with the session each is bound to, if any. */
  listExecutors(options?: CallOptions): Promise<Executor[]> {
    return cluster.listExecutors(this, options);
  }

  /** The cluster's nodes with their capacity and what is still allocatable. */
  listNodes(options?: CallOptions): Promise<FlameNode[]> {
    return cluster.listNodes(this, options);
  }

  /** One node; FlameError "not-found" if there is none by this name. */
  getNode(name: string, options?: CallOptions): Promise<FlameNode> {
    return cluster.getNode(this, name, options);
  }

  private wrap<In, Out>(info: SessionInfo, codec?: TaskCodec<In, Out>): Session<In, Out> {
    return new Session<In, Out>(this, info, codec);
  }
}
