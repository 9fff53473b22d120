import { setImmediate as nextTurn } from "node:timers/promises";

/**
 * True when the client has given up on the call before anything went
 * upstream. A client that sends a request and resets it at once (rapid
 * reset) has the reset read with the request, but Node hands the request to
 * the handler first; one turn of the event loop lets the reset land on the
 * handler's signal. Without this check, each such stream would be opened
 * and reset again on a connection to the upstream that other clients
 * share, and an upstream counts those resets against that connection
 * (nghttp2 sends GOAWAY after about 1,000; tonic's h2 after 20 reset
 * before it accepted them).
 */
export async function clientGoneBeforeStart(signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return true;
  await nextTurn();
  return signal.aborted;
}
