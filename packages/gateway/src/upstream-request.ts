import { Code } from "@connectrpc/connect";
import { type GatewayStatus, statusOfResetStream } from "./grpc-status.js";
import type {
  H2ClientConnection,
  H2ClientStream,
  H2StreamListener,
  StreamAbort,
} from "./h2-client-connection.js";
import type { GatewayLogger } from "./logger.js";

/** Request bytes waiting for upstream window before the client is paused. */
const maxQueuedRequestBytes = 256 * 1024;
/** Times a call the upstream left unprocessed is sent again, each on a connection that takes it. */
const maxResends = 2;

/** What an `UpstreamRequest` needs from the call whose request it carries. */
export interface UpstreamRequestOwner<Plan> extends H2StreamListener<Plan> {
  /** The request's HTTP/2 header block, for each stream opened for it. */
  headerBlock(): Buffer;
  pauseClient(): void;
  resumeClient(): void;
  /** No stream could be opened; `message` says why ("upstream unreachable: ..."). */
  unavailable(message: string): void;
}

/**
 * One call's stream on the upstream connections the calls share (the
 * gRPC-Web relay's and the byte proxy's), as far as the call's protocol
 * does not matter:
 *
 * - bytes that come before the stream is open wait here, and the client is
 *   paused while a connection is being opened for it;
 * - the header block, what came of the body and, when it came in the same
 *   turn of the event loop, the request's end go out in one write;
 * - the client is paused while more than 256 KiB wait for the upstream's
 *   window;
 * - the bytes sent are kept until the response begins: a call the upstream
 *   says it never processed (GOAWAY, REFUSED_STREAM) is sent again from
 *   the start (RFC 9113, section 8.7), at most twice;
 * - response bytes the client has not taken yet are not credited back to
 *   the upstream until it drains, so a slow client slows the upstream.
 */
export class UpstreamRequest<Plan> {
  #stream: H2ClientStream<Plan> | undefined;
  #opening = false;
  /** Request bytes that came before the stream was open. */
  #pending: Buffer[] = [];
  /** Request bytes sent on the current stream, while a resend may need them. */
  #sent: Buffer[] = [];
  #resends = 0;
  #ended = false;
  #answered = false;
  #closed = false;
  /** The client is paused until the stream's queued bytes go out. */
  #throttled = false;
  /** The client is paused while the pool opens a connection for this call. */
  #waiting = false;
  /** Response bytes the client holds, owed to the upstream's window once it drains. */
  #owed = 0;

  constructor(
    private readonly connect: () => H2ClientConnection<Plan> | Promise<H2ClientConnection<Plan>>,
    private readonly owner: UpstreamRequestOwner<Plan>,
    /** For the debug line of a call sent again. */
    private readonly log: { logger: GatewayLogger; method: string },
  ) {}

  /** The stream now carrying the call, if one is open. */
  get stream(): H2ClientStream<Plan> | undefined {
    return this.#stream;
  }

  /** Request bytes; `end` ends the request. They wait here until the stream is open. */
  write(bytes: Buffer, end: boolean): void {
    if (this.#closed) return;
    if (end) this.#ended = true;
    const stream = this.#stream;
    if (stream === undefined) {
      if (bytes.length > 0) this.#pending.push(bytes);
      return;
    }
    this.#send(stream, bytes, end);
  }

  /** Opens the stream, once: at once on a connection with room, or when the pool has one. */
  open(): void {
    if (this.#closed || this.#opening || this.#stream !== undefined) return;
    this.#opening = true;
    const connection = this.connect();
    if (!(connection instanceof Promise)) {
      this.#attach(connection);
      return;
    }
    // The body waits in the client's socket, not here, until the connection is open.
    this.#waiting = true;
    this.owner.pauseClient();
    connection.then(
      () => {
        this.#stopWaiting();
        this.#opening = false;
        // Chosen again, in the same turn as the stream opens: the calls that
        // waited for a new connection were all promised it while it had no
        // stream yet, and it takes only so many.
        this.open();
      },
      (e: unknown) => {
        this.#stopWaiting();
        this.#opening = false;
        if (this.#closed) return;
        const message = e instanceof Error ? e.message : String(e);
        this.owner.unavailable(`upstream unreachable: ${message}`);
      },
    );
  }

  /** The response began: the upstream took the call, so it is never sent again. */
  answered(): void {
    this.#answered = true;
    this.#sent = [];
  }

  /**
   * The stream ended early (`H2StreamListener.onAbort`): undefined when the
   * call was sent again, else the status to end it with.
   */
  afterAbort(reason: StreamAbort): GatewayStatus | undefined {
    if (reason.kind === "unprocessed" && this.#resend()) return undefined;
    if (reason.kind === "reset") return statusOfResetStream(reason.code);
    return { code: Code.Unavailable, message: `upstream connection failed: ${reason.message}` };
  }

  /**
   * The upstream left the stream unprocessed: sends the call again from the
   * start on a stream the pool chooses anew, unless it already answered or
   * the resends are used up. False when the call was not sent again.
   */
  #resend(): boolean {
    if (this.#closed || this.#answered || this.#resends >= maxResends) return false;
    this.#resends++;
    this.log.logger.debug?.("upstream left a call unprocessed; sending it again", {
      method: this.log.method,
    });
    this.#stream = undefined;
    this.#unthrottle();
    // What was sent, then what had not been sent yet, in order.
    this.#pending = [...this.#sent, ...this.#pending];
    this.#sent = [];
    this.open();
    return true;
  }

  /** Hands response bytes back to the upstream's flow control. */
  consumed(bytes: number): void {
    this.#stream?.consumed(bytes);
  }

  /** Response bytes went to the client: credited back now, or once it drains when it is full. */
  delivered(bytes: number, clientFull: boolean): void {
    if (clientFull) this.#owed += bytes;
    else this.consumed(bytes);
  }

  /** The client drained: the response bytes it held go back to the upstream's window. */
  clientDrained(): void {
    const owed = this.#owed;
    this.#owed = 0;
    this.consumed(owed);
  }

  /** Cancels the stream upstream (RST_STREAM CANCEL) unless it is over. */
  cancel(): void {
    this.#stream?.cancel();
  }

  /** The call is over: nothing more is sent, and the client is not held back any longer. */
  close(): void {
    this.#closed = true;
    this.#pending = [];
    this.#sent = [];
    this.#unthrottle();
    this.#stopWaiting();
  }

  #attach(connection: H2ClientConnection<Plan>): void {
    this.#opening = false;
    if (this.#closed) return;
    const pending = this.#pending;
    this.#pending = [];
    const bodyDone = this.#ended && pending.length === 0;
    // Held for the rest of this turn while the request is open: Node's
    // servers report a small request's end just after its data.
    connection.hold();
    try {
      const stream = connection.request(this.owner.headerBlock(), bodyDone, this.owner);
      this.#stream = stream;
      if (!bodyDone) {
        this.#send(
          stream,
          pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending),
          this.#ended,
        );
      }
    } catch (e) {
      this.owner.unavailable(`upstream connection failed: ${(e as Error).message}`);
    } finally {
      if (this.#ended) connection.release();
      else setImmediate(() => connection.release());
    }
  }

  #send(stream: H2ClientStream<Plan>, bytes: Buffer, end: boolean): void {
    if (!this.#answered && bytes.length > 0) this.#sent.push(bytes);
    stream.write(bytes, end);
    if (this.#throttled || stream.queuedBytes <= maxQueuedRequestBytes) return;
    this.#throttled = true;
    this.owner.pauseClient();
    stream.whenFlushed(() => this.#unthrottle());
  }

  /** Lets the client be read again: the bytes went out, or the stream they waited for is gone. */
  #unthrottle(): void {
    if (!this.#throttled) return;
    this.#throttled = false;
    this.owner.resumeClient();
  }

  /** Once, whichever comes first: the connection opened, failed, or the call ended. */
  #stopWaiting(): void {
    if (!this.#waiting) return;
    this.#waiting = false;
    this.owner.resumeClient();
  }
}
