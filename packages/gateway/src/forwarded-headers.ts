import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { FastPathRoute } from "./fast-path.js";
import type { HeaderField } from "./header-block.js";

/**
 * Which HTTP headers cross the gateway. Hop-by-hop headers belong to one
 * connection, and protocol headers (content-type, grpc-*, connect-*) describe
 * the client's protocol, which is not the upstream's: the upstream transport
 * writes its own. Everything else (x-request-id, tracing headers ...) passes.
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
 * Headers to send upstream for a client request. `authorization` is dropped
 * when the gateway consumed it for its own bearer-token check, so the
 * gateway's token never reaches Flame.
 */
export function upstreamRequestHeaders(
  clientHeaders: Headers,
  options: { dropAuthorization: boolean },
): Headers {
  const out = new Headers();
  clientHeaders.forEach((value, name) => {
    if (isProtocolHeader(name) || browserOnly.has(name)) return;
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

/**
 * `upstreamRequestHeaders` for the byte-forwarding path, on Node's header
 * objects: the same headers are dropped (the caller adds content-type, te
 * and grpc-timeout itself).
 */
export function upstreamRequestHeaderObject(
  clientHeaders: IncomingHttpHeaders,
  options: { dropAuthorization: boolean },
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in clientHeaders) {
    if (isProtocolHeader(name) || browserOnly.has(name)) continue;
    if (name === "authorization" && options.dropAuthorization) continue;
    out[name] = clientHeaders[name];
  }
  return out;
}

/**
 * Copies upstream response headers or trailers worth handing to a client
 * of the byte-forwarding path into `into`. `keepGrpc` keeps the gRPC status
 * headers (grpc-status, grpc-message, grpc-status-details-bin) and
 * grpc-encoding, which belong to the message stream being relayed as it is;
 * never grpc-accept-encoding, since that path takes no compressed requests.
 */
export function copyResponseHeaders(
  upstreamHeaders: IncomingHttpHeaders | OutgoingHttpHeaders,
  into: OutgoingHttpHeaders,
  keepGrpc: boolean,
): OutgoingHttpHeaders {
  for (const name in upstreamHeaders) {
    if (name.startsWith("grpc-")) {
      if (!keepGrpc || name === "grpc-accept-encoding") continue;
    } else if (isProtocolHeader(name) || name.startsWith("trailer-")) {
      continue;
    }
    into[name] = upstreamHeaders[name];
  }
  return into;
}

/**
 * The request header fields the relays send upstream for a call, in the
 * order they go: the pseudo-headers, gRPC's `contentType`, `te`, the
 * client's deadline, then the client's headers that cross the gateway (as
 * `upstreamRequestHeaderObject` chooses them).
 */
export function upstreamRequestFields(
  clientHeaders: IncomingHttpHeaders,
  call: { upstream: URL; route: FastPathRoute; contentType: string; dropAuthorization: boolean },
): HeaderField[] {
  const { upstream, route } = call;
  const fields: HeaderField[] = [
    [":method", "POST"],
    [":scheme", upstream.protocol.replace(/:$/, "")],
    [":authority", upstream.host],
    [":path", route.method.path],
    ["content-type", call.contentType],
    ["te", "trailers"],
  ];
  if (route.grpcTimeout !== undefined) fields.push(["grpc-timeout", route.grpcTimeout]);
  const out = upstreamRequestHeaderObject(clientHeaders, {
    dropAuthorization: call.dropAuthorization,
  });
  for (const name in out) {
    const value = out[name];
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v !== undefined) fields.push([name, String(v)]);
    }
  }
  return fields;
}
