/**
 * Which HTTP headers cross the gateway. Hop-by-hop headers belong to one
 * connection; protocol headers (content-type, grpc-*, connect-*) describe
 * the client's protocol, which is not the upstream's, and the upstream
 * transport writes its own; forwarding headers (Forwarded, X-Forwarded-*)
 * are only true when a proxy writes them, so a client's are dropped.
 * Everything else (x-request-id, tracing headers ...) passes.
 */
const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "content-encoding",
  "accept-encoding",
  "http2-settings",
]);

const protocolHeaders = new Set([
  "content-type",
  "user-agent",
  "x-user-agent",
  "x-grpc-web",
  "accept",
  "date",
  "server",
  "vary",
]);

const forwardingHeaders = new Set(["forwarded", "via", "x-real-ip", "true-client-ip"]);

/** Request headers a browser sends for itself that the upstream has no use for. */
const browserOnly = new Set(["cookie", "origin", "referer"]);

function isProtocolHeader(name: string): boolean {
  return (
    name.startsWith(":") ||
    name.startsWith("grpc-") ||
    name.startsWith("connect-") ||
    name.startsWith("access-control-") ||
    name.startsWith("sec-") ||
    hopByHop.has(name) ||
    protocolHeaders.has(name)
  );
}

/**
 * Headers to send upstream for a client request: never the protocol's,
 * hop-by-hop ones (including those the client's `Connection` header names),
 * forwarding headers, or browser-only ones. `authorization` is dropped when
 * the gateway consumed it for its own bearer-token check, so the gateway's
 * token never reaches Flame. Request trailers are never read at all.
 */
export function upstreamRequestHeaders(
  clientHeaders: Headers,
  options: { dropAuthorization: boolean },
): Headers {
  const named = new Set(
    (clientHeaders.get("connection") ?? "")
      .split(",")
      .map((token) => token.trim().toLowerCase())
      .filter((token) => token !== ""),
  );
  const out = new Headers();
  clientHeaders.forEach((value, name) => {
    if (isProtocolHeader(name) || browserOnly.has(name) || named.has(name)) return;
    if (forwardingHeaders.has(name) || name.startsWith("x-forwarded-")) return;
    if (name === "authorization" && options.dropAuthorization) return;
    out.append(name, value);
  });
  return out;
}

/** Response headers or trailers from upstream worth handing to the client. */
export function clientResponseHeaders(upstreamHeaders: Headers): Headers {
  const out = new Headers();
  upstreamHeaders.forEach((value, name) => {
    if (isProtocolHeader(name) || name.startsWith("trailer-")) return;
    out.append(name, value);
  });
  return out;
}

/** Copies every header of `from` into `into`, appending to what is there. */
export function appendHeaders(into: Headers, from: Headers): void {
  from.forEach((value, name) => {
    into.append(name, value);
  });
}
