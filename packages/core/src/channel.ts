import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { Frontend } from "./gen/flame/v1/frontend_pb.js";
import { Rpc } from "./internal/rpc.js";
import type { WatchOptions } from "./internal/watch-hub.js";
import type { Logger, LogLevel } from "./logger.js";
import { resolveLogger } from "./logger.js";
import type { RetryOptions } from "./retry.js";
import { resolveRetry } from "./retry.js";

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

/**
 * A Flame connection without methods: the transport, deadlines, retries,
 * logger and `close()`. The standalone functions (`listSessions(channel)`,
 * `watchTask(channel, session, id)`, ...) take one, so that a browser
 * bundle holds only the calls a page makes. A {@link Connection} is a
 * Channel with every call as a method.
 */
export class Channel {
  /** The raw generated Connect client, for anything this API does not cover. */
  readonly client: Client<typeof Frontend>;
  /** @internal The plumbing the calls share. */
  readonly rpc: Rpc;
  private readonly onClose: (() => void | Promise<void>) | undefined;
  private closing: Promise<void> | undefined;

  constructor(transport: Transport, options: ConnectionOptions = {}) {
    this.client = createClient(Frontend, transport);
    const rpc = new Rpc(
      this.client,
      options.timeoutMs ?? 30_000,
      resolveRetry(options.retry),
      resolveLogger(options.logger),
    );
    rpc.maxRequestBytes = options.maxRequestBytes ?? rpc.maxRequestBytes;
    // Read when the first watch or wait needs them: the code that serves
    // watches is bundled only where a page watches.
    rpc.watchOptions = options.watch;
    rpc.bindCheckMs = options.bindCheckMs;
    this.rpc = rpc;
    this.onClose = options.onClose;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.rpc.closed;
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
}
