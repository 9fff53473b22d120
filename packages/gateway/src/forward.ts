import type {
  DescMethod,
  DescMethodServerStreaming,
  DescMethodUnary,
  DescService,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type HandlerContext,
  type Transport,
} from "@connectrpc/connect";
import { admitCall } from "./admission.js";
import type { BoundedLog } from "./bounded-log.js";
import type { CallGuard } from "./call-guard.js";
import { clientGoneBeforeStart } from "./client-gone.js";
import { upstreamTimeout } from "./deadline.js";
import {
  appendHeaders,
  clientResponseHeaders,
  upstreamRequestHeaders,
} from "./forwarded-headers.js";
import type { GatewayStats } from "./gateway-stats.js";
import type { GatewayLogger } from "./logger.js";
import { resendUnprocessed, type UpstreamAttempts } from "./resend.js";

export interface ForwardingDeps {
  service: DescService;
  upstream: Transport;
  /** The upstream pool, which says whether a failed call may be sent again. */
  attempts: UpstreamAttempts;
  guard: CallGuard;
  logger: GatewayLogger;
  /** Refusals, logged at a bounded rate. */
  refusals: BoundedLog;
  /** Upstream failures, logged at a bounded rate. */
  failures: BoundedLog;
  stats: GatewayStats;
  /** Calls open to the upstream at most; past it, calls are refused at once. */
  maxUpstreamStreams: number;
}

/**
 * Registers one forwarding handler per method of `service`. The handlers do
 * not know the methods: they pass the decoded request to the upstream
 * transport and hand back whatever comes back, so a client speaking
 * gRPC-Web or Connect reaches a server that speaks only gRPC.
 */
export function registerForwarding(router: ConnectRouter, deps: ForwardingDeps): void {
  for (const method of deps.service.methods) {
    switch (method.methodKind) {
      case "unary":
        router.rpc(method, forwardUnary(method as DescMethodUnary, deps) as never);
        break;
      case "server_streaming":
        router.rpc(method, forwardServerStream(method as DescMethodServerStreaming, deps) as never);
        break;
      default:
        // Frontend has neither; a gateway that buffers client streams is not worth it.
        deps.logger.warn?.(`not forwarding ${method.name}: ${method.methodKind} is not supported`);
    }
  }
}

function forwardUnary(method: DescMethodUnary, deps: ForwardingDeps) {
  return async (request: unknown, ctx: HandlerContext): Promise<unknown> => {
    if (await clientGoneBeforeStart(ctx.signal)) throw clientGone(method, deps);
    admit(method, ctx, deps);
    const started = Date.now();
    deps.stats.upstreamStreams++;
    try {
      const [timeoutMs, headers] = upstreamDeadlineAndHeaders(ctx, deps);
      const response = await resendUnprocessed(deps.attempts, headers, ctx.signal, () =>
        deps.upstream.unary(method, ctx.signal, timeoutMs, headers, request as never),
      );
      appendHeaders(ctx.responseHeader, clientResponseHeaders(response.header));
      appendHeaders(ctx.responseTrailer, clientResponseHeaders(response.trailer));
      logDone(deps, method, "OK", started);
      return response.message;
    } catch (e) {
      throw failed(e, method, ctx, deps, started);
    } finally {
      deps.stats.upstreamStreams--;
    }
  };
}

function forwardServerStream(method: DescMethodServerStreaming, deps: ForwardingDeps) {
  return async function* (request: unknown, ctx: HandlerContext): AsyncIterable<unknown> {
    if (await clientGoneBeforeStart(ctx.signal)) throw clientGone(method, deps);
    admit(method, ctx, deps);
    const started = Date.now();
    // Our own controller, so the upstream stream is cancelled however this
    // generator ends: client cancel (ctx.signal), client gone (return()),
    // or an error. Breaking out of a Connect stream alone would not do it.
    const upstreamAbort = new AbortController();
    const onClientAbort = () => upstreamAbort.abort(ctx.signal.reason);
    ctx.signal.addEventListener("abort", onClientAbort, { once: true });
    if (ctx.signal.aborted) onClientAbort();
    deps.stats.openStreams++;
    deps.stats.upstreamStreams++;
    let completed = false;
    try {
      const [timeoutMs, headers] = upstreamDeadlineAndHeaders(ctx, deps);
      // Resent only before the response headers: nothing has reached the client yet.
      const response = await resendUnprocessed(deps.attempts, headers, upstreamAbort.signal, () =>
        deps.upstream.stream(
          method,
          upstreamAbort.signal,
          timeoutMs,
          headers,
          singleMessage(request as never),
        ),
      );
      // Headers go out with the first message, so set them before yielding.
      appendHeaders(ctx.responseHeader, clientResponseHeaders(response.header));
      for await (const message of response.message) {
        yield message;
      }
      appendHeaders(ctx.responseTrailer, clientResponseHeaders(response.trailer));
      completed = true;
      logDone(deps, method, "OK", started);
    } catch (e) {
      throw failed(e, method, ctx, deps, started);
    } finally {
      deps.stats.openStreams--;
      deps.stats.upstreamStreams--;
      ctx.signal.removeEventListener("abort", onClientAbort);
      if (!completed) upstreamAbort.abort();
    }
  };
}

async function* singleMessage<T>(message: T): AsyncIterable<T> {
  yield message;
}

/** The call's client reset it before it started: nothing goes upstream. */
function clientGone(method: DescMethod, deps: ForwardingDeps): ConnectError {
  deps.logger.debug?.("client cancelled before the call started", { method: method.name });
  return new ConnectError("the client cancelled the call", Code.Canceled);
}

/**
 * Runs the guard (counting and logging a refusal), then the upstream
 * stream limit. Nothing has gone upstream yet.
 */
function admit(method: DescMethod, ctx: HandlerContext, deps: ForwardingDeps): void {
  const refused = admitCall(deps, method.name, ctx.requestHeader, ctx.protocolName);
  if (refused !== undefined) throw refused;
  if (deps.stats.upstreamStreams >= deps.maxUpstreamStreams) {
    deps.stats.rejected.busy++;
    deps.refusals.warn("call refused", {
      method: method.name,
      code: Code[Code.ResourceExhausted],
      reason: "busy",
      protocol: ctx.protocolName,
    });
    throw new ConnectError(
      `the gateway has ${deps.maxUpstreamStreams} calls open to the upstream, its limit`,
      Code.ResourceExhausted,
    );
  }
  deps.stats.forwarded[method.name] = (deps.stats.forwarded[method.name] ?? 0) + 1;
}

function upstreamDeadlineAndHeaders(
  ctx: HandlerContext,
  deps: ForwardingDeps,
): [number | undefined, Headers] {
  const headers = upstreamRequestHeaders(ctx.requestHeader, {
    dropAuthorization: deps.guard.consumesAuthorization,
  });
  return [upstreamTimeout(ctx.timeoutMs(), headers), headers];
}

/**
 * Turns whatever the upstream call threw into the error the client gets:
 * same code, message and details, with metadata stripped of protocol
 * headers. Re-throwing the upstream error as it is would carry the
 * upstream's gRPC content-type into a Connect response, and the Connect
 * client would then report Unimplemented instead of the real code
 * (connect-es issue 1604).
 */
function failed(
  e: unknown,
  method: DescMethod,
  ctx: HandlerContext,
  deps: ForwardingDeps,
  started: number,
): ConnectError {
  const upstreamError = ConnectError.from(e);
  const metadata = clientResponseHeaders(upstreamError.metadata);
  // Headers already set on the response would otherwise be sent twice.
  ctx.responseHeader.forEach((_, name) => {
    metadata.delete(name);
  });
  const unreachable = isConnectionFailure(upstreamError);
  const error = unreachable
    ? // connect-node reports some of these (TLS verification) as Internal; to
      // the client they all mean the same: the gateway cannot reach Flame.
      new ConnectError(`upstream unreachable: ${upstreamError.rawMessage}`, Code.Unavailable)
    : new ConnectError(upstreamError.rawMessage, upstreamError.code, metadata);
  if (!unreachable) error.details = upstreamError.details;
  const code = Code[error.code];
  if (ctx.signal.aborted && error.code === Code.Canceled) {
    deps.logger.debug?.("client cancelled", { method: method.name, ms: Date.now() - started });
  } else if (isServerSideFailure(error.code)) {
    deps.failures.warn("upstream call failed", {
      method: method.name,
      code,
      message: error.rawMessage,
      ms: Date.now() - started,
    });
  } else {
    logDone(deps, method, code ?? String(error.code), started);
  }
  return error;
}

/**
 * True when the call never got an answer from the upstream: no response
 * headers at all, a code that says so, and a Node system error
 * (ECONNREFUSED, a TLS verification code ...) underneath.
 */
function isConnectionFailure(error: ConnectError): boolean {
  let empty = true;
  error.metadata.forEach(() => {
    empty = false;
  });
  const cause = error.cause as { code?: unknown } | undefined;
  return empty && typeof cause?.code === "string" && isServerSideFailure(error.code);
}

function isServerSideFailure(code: Code): boolean {
  return code === Code.Unavailable || code === Code.Internal || code === Code.Unknown;
}

function logDone(deps: ForwardingDeps, method: DescMethod, code: string, started: number): void {
  deps.logger.debug?.("forwarded", { method: method.name, code, ms: Date.now() - started });
}
