// A tiny upstream that speaks only gRPC over HTTP/2, like real Flame, and
// records what reached it: call counts, request headers, deadlines and
// stream cancellations. Only the methods the gateway tests need exist. A
// request's `x-echo` header comes back as the response header `x-echo` and
// the trailer `x-echo-trailer`.
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Frontend, TaskState } from "@flame-ts/core";

export interface FakeFlame {
  url: string;
  /** Calls that reached the upstream, by method name. */
  calls: Record<string, number>;
  /** Request headers of the last call of each method. */
  headers: Record<string, Headers>;
  /** ctx.timeoutMs() seen by the last call of each method. */
  timeoutMs: Record<string, number | undefined>;
  streamsStarted: number;
  streamsCancelled: number;
  /** HTTP/2 streams clients opened, whatever became of them. */
  http2Streams: number;
  /** Unary calls whose caller went away while the upstream was answering. */
  unaryCancelled: number;
  totalCalls(): number;
  close(): Promise<void>;
}

export async function startFakeFlame(
  options: {
    tls?: { cert: string; key: string };
    maxConcurrentStreams?: number;
    /** HPACK table size offered to clients and used for responses (Node's default: 4096). */
    headerTableSize?: number;
    /** Port to listen on (default: a free one), e.g. to come up where a gateway already points. */
    port?: number;
  } = {},
): Promise<FakeFlame> {
  const state = {
    calls: {} as Record<string, number>,
    headers: {} as Record<string, Headers>,
    timeoutMs: {} as Record<string, number | undefined>,
    streamsStarted: 0,
    streamsCancelled: 0,
    unaryCancelled: 0,
    http2Streams: 0,
  };
  const seen = (ctx: HandlerContext) => {
    const name = ctx.method.name;
    state.calls[name] = (state.calls[name] ?? 0) + 1;
    state.headers[name] = new Headers(ctx.requestHeader);
    state.timeoutMs[name] = ctx.timeoutMs();
    // Sent back when asked, so tests can check response header blocks call by call.
    const echo = ctx.requestHeader.get("x-echo");
    if (echo !== null) {
      ctx.responseHeader.set("x-echo", echo);
      ctx.responseTrailer.set("x-echo-trailer", echo);
    }
  };
  const task = (sessionId: string, id: string, taskState: TaskState, input?: Uint8Array) => ({
    metadata: { id, name: id },
    spec: { sessionId, ...(input ? { input } : {}) },
    status: { state: taskState, creationTime: 1_700_000_000_000n },
  });
  const app = (name: string) => ({
    metadata: { id: name, name },
    spec: { description: `the ${name} application` },
    status: { creationTime: 1_700_000_000_000n },
  });

  const handler = connectNodeAdapter({
    grpc: true,
    grpcWeb: false,
    connect: false,
    routes: (router) =>
      router.service(Frontend, {
        getApplication(req, ctx) {
          seen(ctx);
          ctx.responseHeader.set("x-upstream-header", "from-flame");
          ctx.responseTrailer.set("x-upstream-trailer", "done");
          if (req.name !== "flmping") {
            throw new ConnectError(`application ${req.name} not found`, Code.NotFound, {
              "x-error-hint": "check the name",
            });
          }
          return app(req.name);
        },
        listApplication(_req, ctx) {
          seen(ctx);
          return { applications: ["flmexec", "flmping", "flmrun"].map(app) };
        },
        createSession(req, ctx) {
          seen(ctx);
          return {
            metadata: { id: req.sessionId, name: req.sessionId },
            spec: req.session ?? {},
            status: { creationTime: 1_700_000_000_000n },
          };
        },
        createTask(req, ctx) {
          seen(ctx);
          return task(req.task?.sessionId ?? "", "1", TaskState.Pending, req.task?.input);
        },
        async getTask(req, ctx) {
          seen(ctx);
          if (req.taskId === "hold") {
            // Answers only when the caller gives up.
            await new Promise<void>((resolve) => {
              if (ctx.signal.aborted) resolve();
              ctx.signal.addEventListener("abort", () => resolve(), { once: true });
            });
            state.unaryCancelled++;
            throw new ConnectError("caller went away", Code.Canceled);
          }
          return task(req.sessionId, req.taskId, TaskState.Succeed);
        },
        async *listTask(req, ctx) {
          seen(ctx);
          // "big:<count>:<bytes>": that many tasks with an input of that size each.
          const big = /^big:(\d+):(\d+)$/.exec(req.sessionId);
          if (big !== null) {
            for (let i = 0; i < Number(big[1]); i++) {
              const input = new Uint8Array(Number(big[2])).fill(i % 256);
              yield task(req.sessionId, String(i), TaskState.Succeed, input);
            }
            return;
          }
          for (const id of ["1", "2", "3"]) yield task(req.sessionId, id, TaskState.Succeed);
        },
        async *watchTask(req, ctx) {
          seen(ctx);
          state.streamsStarted++;
          yield task(req.sessionId, req.taskId, TaskState.Running);
          if (req.taskId === "fail") {
            throw new ConnectError("executor lost", Code.Internal);
          }
          // Hold the stream open until the caller goes away.
          await new Promise<void>((resolve) => {
            if (ctx.signal.aborted) resolve();
            ctx.signal.addEventListener("abort", () => resolve(), { once: true });
          });
          state.streamsCancelled++;
        },
      }),
  });
  const settings: http2.Settings = {
    ...(options.maxConcurrentStreams === undefined
      ? {}
      : { maxConcurrentStreams: options.maxConcurrentStreams }),
    ...(options.headerTableSize === undefined ? {} : { headerTableSize: options.headerTableSize }),
  };
  const tableOptions =
    options.headerTableSize === undefined
      ? {}
      : { maxDeflateDynamicTableSize: options.headerTableSize };
  const server = options.tls
    ? http2.createSecureServer(
        { cert: options.tls.cert, key: options.tls.key, settings, ...tableOptions },
        handler,
      )
    : http2.createServer({ settings, ...tableOptions }, handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  const refused = new Set<string>();
  server.on("stream", (stream, headers) => {
    state.http2Streams++;
    refuseOnce(stream, headers["x-refuse"], refused);
  });
  server.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${options.tls ? "https" : "http"}://${options.tls ? "localhost" : "127.0.0.1"}:${port}`,
    get calls() {
      return state.calls;
    },
    get headers() {
      return state.headers;
    },
    get timeoutMs() {
      return state.timeoutMs;
    },
    get streamsStarted() {
      return state.streamsStarted;
    },
    get streamsCancelled() {
      return state.streamsCancelled;
    },
    get unaryCancelled() {
      return state.unaryCancelled;
    },
    get http2Streams() {
      return state.http2Streams;
    },
    totalCalls: () => Object.values(state.calls).reduce((a, b) => a + b, 0),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.destroy();
      }),
  };
}

/**
 * `x-refuse: <how>:<token>` has the first stream with that token refused;
 * streams sent again with it are served. `refused-stream`: RST_STREAM
 * REFUSED_STREAM. `goaway-unprocessed`: GOAWAY(INTERNAL_ERROR) with a last
 * stream id below the stream (so not the first on its connection: Node
 * sends a last stream id of 0 as the last it processed), so the client
 * knows it was not processed;
 * `goaway-processed`: the same with the stream's own id, as after a stream
 * the server took.
 */
function refuseOnce(
  stream: http2.ServerHttp2Stream,
  value: string | string[] | undefined,
  refused: Set<string>,
): void {
  if (typeof value !== "string" || refused.has(value)) return;
  refused.add(value);
  const how = value.split(":")[0];
  const { NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR } = http2.constants;
  const id = stream.id ?? 1;
  if (how === "refused-stream") stream.close(NGHTTP2_REFUSED_STREAM);
  if (how === "goaway-unprocessed") stream.session?.goaway(NGHTTP2_INTERNAL_ERROR, id - 2);
  if (how === "goaway-processed") stream.session?.goaway(NGHTTP2_INTERNAL_ERROR, id);
}

/** Polls until `check` holds, for state another process or socket updates. */
export async function eventually(check: () => boolean, what: string, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}
