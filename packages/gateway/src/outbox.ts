import type * as net from "node:net";

/**
 * Bytes for one socket. Between `hold()` and `release()` they are
 * gathered and then written at once (one system call instead of one per
 * frame; cheaper than cork's writev for a few small frames).
 */
export class Outbox {
  #held: Buffer[] = [];
  #holding = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly onFull: () => void,
  ) {}

  hold(): void {
    this.#holding = true;
  }

  write(bytes: Buffer): void {
    if (this.#holding) this.#held.push(bytes);
    else this.#send(bytes);
  }

  release(): void {
    this.#holding = false;
    const held = this.#held;
    if (held.length === 0) return;
    this.#held = [];
    this.#send(held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held));
  }

  #send(bytes: Buffer): void {
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return;
    if (!socket.write(bytes)) this.onFull();
  }
}

/**
 * Outboxes held together while one read is handled, then released at
 * once: a read from a shared upstream connection may carry frames for
 * calls of many client connections, and each should get one write.
 */
export class WriteBatch {
  #open = false;
  readonly #held = new Set<Outbox>();

  begin(): void {
    this.#open = true;
  }

  /** Holds `outbox` until `end()` if a batch is open. */
  join(outbox: Outbox): void {
    if (!this.#open || this.#held.has(outbox)) return;
    outbox.hold();
    this.#held.add(outbox);
  }

  end(): void {
    this.#open = false;
    for (const outbox of this.#held) outbox.release();
    this.#held.clear();
  }
}
