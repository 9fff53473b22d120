/**
 * Options every call takes as its last argument.
 *
 * - `signal` cancels the call; the server sees the stream or request reset.
 * - `timeoutMs` bounds the call. Unary calls default to the connection's
 *   `timeoutMs` (30 s); streams and the Observables built on them have no
 *   deadline unless one is given here.
 * - `headers` are sent with each request (never echoed into error messages).
 */
export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  headers?: HeadersInit;
}
