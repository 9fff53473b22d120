import type * as net from "node:net";
import { Code } from "@connectrpc/connect";
import type { H2ClientConnection } from "./h2-client-connection.js";
import type { H2ClientPool } from "./h2-client-pool.js";
import type { RequestHead, RequestHeadReader } from "./http1-request-head.js";
import { Outbox, type WriteBatch } from "./outbox.js";
import type { GrpcWebRelayDeps } from "./web-relay.js";
import {
  planRequest,
  type RequestPlan,
  type ResponsePlan,
  type WebCallHost,
  WebRelayCall,
} from "./web-relay-call.js";

/**
 * How long a connection may wait for its next request before it is closed
 * (nothing buffered) or handed to Node's server (a head in progress, which
 * Node's own timeouts then govern). Node closes idle keep-alive
 * connections after the same 5 s.
 */
const idleMs = 5_000;
/**
 * How long a request body may go without a byte before its call fails and
 * the connection closes (Node's server gives a whole request 300 s; a
 * browser sends its body at once).
 */
const bodyStallMs = 30_000;
/** Bytes of later requests buffered while a call is in flight before the client is paused. */
const maxBufferedBytes = 64 * 1024;

/** What the relay's connections share. */
export interface WebRelayShared {
  heads: RequestHeadReader<RequestPlan>;
  upstream: H2ClientPool<ResponsePlan>;
  /** Open while a read from an upstream connection is handled. */
  batch: WriteBatch;
}

/**
 * One HTTP/1.1 client connection served by the gRPC-Web relay. Requests on
 * it are read one at a time: a gRPC-Web call becomes a `WebRelayCall`, a
 * stream on one of the relay's HTTP/2 connections to the upstream, and a
 * CORS preflight is answered here. The first request of any other kind, or
 * in a form the relay does not read itself, hands the connection, with
 * every byte not yet served, to Node's HTTP/1.1 server for good.
 */
export class WebRelayConnection implements WebCallHost {
  readonly deps: GrpcWebRelayDeps;
  readonly #shared: WebRelayShared;
  readonly #socket: net.Socket;
  readonly #toClient: Outbox;
  readonly #decline: (bytes: Buffer) => void;
  readonly #onClosed: (connection: WebRelayConnection) => void;
  #buffer: Buffer = Buffer.alloc(0);
  #call: WebRelayCall | undefined;
  /** Request body bytes still to read: the current call's, or a finished call's to drop. */
  #bodyLeft = 0;
  #pauses = 0;
  #processing = false;
  #ending = false;
  #gone = false;
  #idleTimer: NodeJS.Timeout | undefined;
  #bodyTimer: NodeJS.Timeout | undefined;
  #pausedForBuffer = false;
  readonly #onData = (chunk: Buffer) => this.#onClientBytes(chunk);
  readonly #onDrain = () => this.#call?.clientDrained();
  readonly #onClose = () => this.#onClientGone();
  readonly #onError = () => {};

  constructor(
    deps: GrpcWebRelayDeps,
    shared: WebRelayShared,
    socket: net.Socket,
    head: Buffer,
    decline: (bytes: Buffer) => void,
    onClosed: (connection: WebRelayConnection) => void,
  ) {
    this.deps = deps;
    this.#shared = shared;
    this.#socket = socket;
    this.#decline = decline;
    this.#onClosed = onClosed;
    this.#toClient = new Outbox(socket, () => {});
    socket.on("data", this.#onData);
    socket.on("drain", this.#onDrain);
    socket.on("close", this.#onClose);
    socket.on("error", this.#onError);
    this.#onClientBytes(head);
    // Unless the first call already paused it (waiting for an upstream connection).
    if (!this.#gone && this.#pauses === 0) socket.resume();
  }

  /** Closed, or handed to Node's server. */
  get gone(): boolean {
    return this.#gone;
  }

  /** Ends the call in flight with Unavailable (`reason`) and closes the connection. */
  close(reason: string): void {
    if (this.#gone) return;
    this.#ending = true;
    this.#call?.fail(Code.Unavailable, reason);
    this.#end();
  }

  // --- WebCallHost ---------------------------------------------------------

  writeClient(bytes: Buffer): void {
    this.#shared.batch.join(this.#toClient);
    this.#toClient.write(bytes);
  }

  get clientFull(): boolean {
    return this.#socket.writableNeedDrain;
  }

  pauseClient(): void {
    if (this.#pauses++ === 0) this.#socket.pause();
  }

  resumeClient(): void {
    if (--this.#pauses === 0 && !this.#gone) this.#socket.resume();
  }

  upstream(): H2ClientConnection<ResponsePlan> | Promise<H2ClientConnection<ResponsePlan>> {
    return this.#shared.upstream.connection();
  }

  callDone(call: WebRelayCall, close: boolean): void {
    if (call !== this.#call) return;
    this.#call = undefined;
    if (close) {
      this.#ending = true;
      this.#end();
      return;
    }
    // Lifted whatever is buffered: the next request's body may be all of it,
    // and a client still paused could never send the rest. `#process` pauses
    // again if later requests pile up behind the next call.
    if (this.#pausedForBuffer) {
      this.#pausedForBuffer = false;
      this.resumeClient();
    }
    if (!this.#processing) this.#process();
  }

  // --- reading requests ----------------------------------------------------

  #onClientBytes(chunk: Buffer): void {
    if (this.#gone || this.#ending) return;
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    this.#toClient.hold();
    this.#shared.upstream.hold();
    try {
      this.#process();
    } finally {
      this.#shared.upstream.release();
      this.#toClient.release();
    }
  }

  /** Serves what is buffered: the current body, then the next request heads. */
  #process(): void {
    this.#processing = true;
    try {
      while (!this.#gone && !this.#ending) {
        if (this.#bodyLeft > 0) {
          if (this.#buffer.length === 0) return;
          const take = Math.min(this.#bodyLeft, this.#buffer.length);
          const bytes = this.#buffer.subarray(0, take);
          this.#buffer = this.#buffer.subarray(take);
          this.#bodyLeft -= take;
          this.#watchBody();
          this.#call?.body(bytes, this.#bodyLeft === 0);
          continue;
        }
        if (this.#call !== undefined) {
          // Pipelined requests wait for the response in flight.
          if (this.#buffer.length > maxBufferedBytes && !this.#pausedForBuffer) {
            this.#pausedForBuffer = true;
            this.pauseClient();
          }
          return;
        }
        if (this.#buffer.length === 0) {
          this.#armIdle();
          return;
        }
        const reading = this.#shared.heads.read(this.#buffer);
        if (reading.kind === "incomplete") {
          this.#armIdle();
          return;
        }
        if (reading.kind === "other") {
          this.#handOff();
          return;
        }
        const { remembered } = reading;
        remembered.derived ??= planRequest(this.deps, remembered.head);
        this.#serve(remembered.head, remembered.derived);
      }
    } finally {
      this.#processing = false;
    }
  }

  #serve(head: RequestHead, plan: RequestPlan): void {
    this.#disarmIdle();
    if (head.method === "OPTIONS" && head.contentLength === 0) {
      this.#buffer = this.#buffer.subarray(head.size);
      this.#answerPreflight(head);
      if (head.close) {
        this.#ending = true;
        this.#end();
      }
      return;
    }
    if (plan.forward === undefined) {
      this.#handOff();
      return;
    }
    this.#buffer = this.#buffer.subarray(head.size);
    this.#bodyLeft = head.contentLength;
    const call = new WebRelayCall(this, head, plan.forward);
    this.#call = call;
    this.#watchBody();
    call.start();
  }

  /** A CORS preflight, answered as the gateway's HTTP/1.1 server answers it. */
  #answerPreflight(head: RequestHead): void {
    let lines = "";
    let status = 204;
    this.deps.cors.answerPreflight(head.headers, {
      setHeader(name, value) {
        lines += `${name}: ${String(value)}\r\n`;
      },
      get statusCode() {
        return status;
      },
      set statusCode(code: number) {
        status = code;
      },
      end() {},
    });
    const reason = status === 204 ? "No Content" : "Forbidden";
    const close = head.close ? "connection: close\r\n" : "";
    const length = status === 204 ? "" : "content-length: 0\r\n";
    this.writeClient(
      Buffer.from(`HTTP/1.1 ${status} ${reason}\r\n${lines}${length}${close}\r\n`, "latin1"),
    );
  }

  // --- the connection's end ------------------------------------------------

  /** Gives the connection, with the bytes not yet served, to Node's HTTP/1.1 server. */
  #handOff(): void {
    this.#detach();
    this.#onClosed(this);
    this.#socket.pause();
    const bytes = this.#buffer;
    this.#buffer = Buffer.alloc(0);
    this.#decline(bytes);
  }

  /** (Re)starts the body's stall timer while body bytes are due; stops it when none are. */
  #watchBody(): void {
    if (this.#bodyTimer !== undefined) clearTimeout(this.#bodyTimer);
    this.#bodyTimer = undefined;
    if (this.#bodyLeft === 0 || this.#gone) return;
    this.#bodyTimer = setTimeout(() => {
      this.#bodyTimer = undefined;
      this.#ending = true;
      this.#call?.fail(Code.DeadlineExceeded, "the request body stopped arriving");
      this.#end();
    }, bodyStallMs);
    this.#bodyTimer.unref();
  }

  #armIdle(): void {
    if (this.#idleTimer !== undefined) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#call !== undefined || this.#gone) return;
      if (this.#buffer.length === 0) this.#end();
      else this.#handOff();
    }, idleMs);
    this.#idleTimer.unref();
  }

  #disarmIdle(): void {
    if (this.#idleTimer === undefined) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  /** Ends the client connection once what was written has gone out. */
  #end(): void {
    if (this.#gone) return;
    this.#toClient.release();
    const socket = this.#socket;
    socket.end();
    // A client that does not close its side in time is cut off, counted from
    // when the last bytes went to the OS: from `end()`, a slow reader lost
    // the tail of a large response.
    const cutOff = () => setTimeout(() => socket.destroy(), 1_000).unref();
    if (socket.writableFinished) cutOff();
    else socket.once("finish", cutOff);
    this.#finish();
  }

  #onClientGone(): void {
    if (this.#gone) return;
    this.#call?.clientGone();
    this.#call = undefined;
    this.#finish();
  }

  #finish(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#disarmIdle();
    this.#watchBody();
    this.#onClosed(this);
  }

  #detach(): void {
    this.#gone = true;
    this.#disarmIdle();
    this.#watchBody();
    const socket = this.#socket;
    socket.off("data", this.#onData);
    socket.off("drain", this.#onDrain);
    socket.off("close", this.#onClose);
    socket.off("error", this.#onError);
  }
}
