import type { Transport } from "@connectrpc/connect";
import { connectionAffinity } from "@flame-ts/core";

/**
 * One Connect transport over several, each with an HTTP/2 connection of its
 * own: calls take turns (round robin), and calls that carry the same
 * `connectionAffinity` context value share one, so the server sees them in
 * order (a watch's WatchTask, then its GetTask).
 *
 * Why: Node's HTTP/2 client sends the requests that one socket read
 * triggered only after handling the whole read, so with every call on one
 * busy connection client and server take turns; on two they overlap.
 */
export function spreadTransport(transports: readonly Transport[]): Transport {
  const first = transports[0];
  if (first === undefined) throw new Error("spreadTransport needs at least one transport");
  if (transports.length === 1) return first;
  const pinned = new WeakMap<object, Transport>();
  let turn = 0;
  const pick = (contextValues: Parameters<Transport["unary"]>[5]): Transport => {
    const key = contextValues?.get(connectionAffinity);
    if (key !== undefined) {
      const held = pinned.get(key);
      if (held !== undefined) return held;
    }
    const chosen = transports[turn] as Transport;
    turn = (turn + 1) % transports.length;
    if (key !== undefined) pinned.set(key, chosen);
    return chosen;
  };
  return {
    unary: (method, signal, timeoutMs, header, input, contextValues) =>
      pick(contextValues).unary(method, signal, timeoutMs, header, input, contextValues),
    stream: (method, signal, timeoutMs, header, input, contextValues) =>
      pick(contextValues).stream(method, signal, timeoutMs, header, input, contextValues),
  };
}
