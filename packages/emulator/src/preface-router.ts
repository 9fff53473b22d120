import type * as net from "node:net";

/** The client connection preface that opens every HTTP/2 connection without TLS. */
const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/**
 * Waits for a cleartext connection's first bytes: once they are the whole
 * HTTP/2 preface, or stop matching it, puts them back and calls `route`
 * with `true` for HTTP/2. A connection that sends no more than part of the
 * preface for `timeoutMs` is dropped, so no client is held before Node's
 * server for its protocol (and its timers) takes it.
 */
export function routeByPreface(
  socket: net.Socket,
  timeoutMs: number,
  route: (isHttp2: boolean) => void,
): void {
  let seen: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  const stop = () => {
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("error", onError);
    socket.off("close", onClose);
  };
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, http2Preface.length);
    const isHttp2 = seen.subarray(0, n).equals(http2Preface.subarray(0, n));
    if (isHttp2 && n < http2Preface.length) return;
    stop();
    socket.pause();
    socket.unshift(seen);
    route(isHttp2);
    // Node's HTTP/2 session reads what was put back by itself; its HTTP/1.1
    // parser reads from the handle, so the put-back bytes must flow now.
    if (!isHttp2) socket.resume();
  };
  const onError = () => {
    stop();
    socket.destroy();
  };
  const onClose = () => stop();
  socket.on("data", onData);
  socket.on("error", onError);
  socket.on("close", onClose);
}
