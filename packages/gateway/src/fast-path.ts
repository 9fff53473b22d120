import type { IncomingHttpHeaders } from "node:http";
import type { DescService } from "@bufbuild/protobuf";
import { parseGrpcTimeout } from "./grpc-status.js";

/** A method the byte path may forward. */
export interface ForwardedMethod {
  name: string;
  path: string;
  /** Server streams are counted in `stats().openStreams` while open. */
  serverStreaming: boolean;
}

/** A request the byte path takes: which method, and which client protocol. */
export interface FastPathRoute {
  method: ForwardedMethod;
  /** gRPC-Web (binary) client; otherwise gRPC. */
  web: boolean;
  /** The client's content type, echoed in gRPC-Web responses. */
  contentType: string;
  /** The client's `grpc-timeout`, forwarded upstream, and the same in milliseconds. */
  grpcTimeout: string | undefined;
  timeoutMs: number | undefined;
}

const grpcTypes = new Set(["application/grpc", "application/grpc+proto"]);
const webTypes = new Set(["application/grpc-web", "application/grpc-web+proto"]);

/**
 * Decides which requests are forwarded as bytes: binary gRPC and gRPC-Web
 * POSTs to a known method, without request compression (the size limit
 * must hold for the message, not its compressed form) and with a valid
 * deadline. Everything else (Connect, gRPC-Web text, JSON, unknown paths,
 * preflights) takes the decoding path, which answers exactly as before.
 */
export class FastPath {
  readonly #methods = new Map<string, ForwardedMethod>();

  constructor(
    service: DescService,
    private readonly protocols: { grpc: boolean; grpcWeb: boolean },
  ) {
    for (const method of service.methods) {
      if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") continue;
      const path = `/${service.typeName}/${method.name}`;
      this.#methods.set(path, {
        name: method.name,
        path,
        serverStreaming: method.methodKind === "server_streaming",
      });
    }
  }

  route(
    httpMethod: string | undefined,
    path: string | undefined,
    headers: IncomingHttpHeaders,
    http1: boolean,
  ): FastPathRoute | undefined {
    if (httpMethod !== "POST" || path === undefined) return undefined;
    const contentType = headers["content-type"];
    if (contentType === undefined) return undefined;
    let web: boolean;
    if (webTypes.has(contentType)) {
      if (!this.protocols.grpcWeb) return undefined;
      web = true;
    } else if (grpcTypes.has(contentType)) {
      // gRPC needs HTTP/2 trailers.
      if (!this.protocols.grpc || http1) return undefined;
      web = false;
    } else {
      return undefined;
    }
    const method = this.#methods.get(path);
    if (method === undefined) return undefined;
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return undefined;
    const grpcTimeout = headers["grpc-timeout"];
    let timeoutMs: number | undefined;
    if (grpcTimeout !== undefined) {
      // A malformed deadline gets the decoding path's answer.
      if (typeof grpcTimeout !== "string") return undefined;
      timeoutMs = parseGrpcTimeout(grpcTimeout);
      if (timeoutMs === undefined) return undefined;
    }
    return { method, web, contentType, grpcTimeout, timeoutMs };
  }
}
