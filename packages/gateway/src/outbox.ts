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
