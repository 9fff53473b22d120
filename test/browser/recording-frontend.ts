// A Frontend for browser tests that records what reached it: connect-node's
// adapter on Node's HTTP/1.1 server (gRPC-Web, as a browser speaks it), with
// a CORS grant for any origin. ListApplication never answers: it waits for
// its call to be aborted, and notes the deadline the request carried.
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Frontend } from "@flame-ts/core/gen";

/** What the server saw of one ListApplication call. */
export interface SeenCall {
  grpcTimeout: string | null;
  /** Set once the call's signal aborted (the client went away or the deadline passed). */
  aborted: boolean;
}

export interface RecordingFrontend {
  url: string;
  calls: SeenCall[];
  close(): Promise<void>;
}

export async function startRecordingFrontend(): Promise<RecordingFrontend> {
  const calls: SeenCall[] = [];
  const routes = (router: ConnectRouter) =>
    router.service(Frontend, {
      async listApplication(_req, ctx) {
        const seen: SeenCall = {
          grpcTimeout: ctx.requestHeader.get("grpc-timeout"),
          aborted: false,
        };
        calls.push(seen);
        await new Promise<void>((resolve) =>
          ctx.signal.addEventListener("abort", () => resolve(), { once: true }),
        );
        seen.aborted = true;
        return { applications: [] };
      },
    });
  const handler = connectNodeAdapter({ routes });
  const server = http.createServer((req, res) => {
    res.setHeader("access-control-allow-origin", "*");
    res.setHeader("access-control-expose-headers", "grpc-status, grpc-message");
    if (req.method === "OPTIONS") {
      res.setHeader("access-control-allow-methods", "POST");
      res.setHeader("access-control-allow-headers", "*");
      res.writeHead(204).end();
      return;
    }
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
