/**
 * Options every call takes as its last argument.
 *
 * - `signal` cancels the call; the server sees the stream or request reset.
 * - `timeoutMs` bounds the call, and is sent to the server as the call's
 *   gRPC deadline (`grpc-timeout`) so it can stop work. Unary calls without
 *   one are still bounded by the connection's `timeoutMs` (30 s), which the
 *   client enforces on its own and does not send. Streams and the
 *   Observables built on them have no deadline unless one is given here.
 * - `headers` are sent with each request (never echoed into error messages).
 */
export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  headers?: HeadersInit;
}
