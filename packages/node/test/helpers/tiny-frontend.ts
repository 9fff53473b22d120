import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ApplicationListSchema, ApplicationSchema$, Frontend } from "@flame-ts/core/gen";

/** A tiny Frontend server for transport tests: only GetApplication and ListApplication. */
export interface TinyFrontend {
  url: string;
  /** HTTP/2 sessions opened and closed so far, as the server saw them. */
  sessions: { opened: number; closed: number };
  /** Resolves when the server has seen `n` sessions close. */
  closedSessions(n: number): Promise<void>;
  close(): Promise<void>;
}

export interface TinyFrontendOptions {
  /** Serve TLS with this certificate and key; plaintext h2c otherwise. */
  tls?: { cert: string; key: string; ca?: string; requireClientCert?: boolean };
}

function routes(router: ConnectRouter): void {
  const flmping = () =>
    create(ApplicationSchema$, {
      metadata: { id: "flmping", name: "flmping" },
      spec: { command: "/usr/local/flame/bin/flmping-service" },
      status: { creationTime: 1_700_000_000_000n },
    });
  router.service(Frontend, {
    getApplication(req) {
      if (req.name === "flmping") return flmping();
      throw new ConnectError(`application ${req.name} not found`, Code.NotFound);
    },
    listApplication() {
      return create(ApplicationListSchema, { applications: [flmping()] });
    },
  });
}

/** Start the tiny server on 127.0.0.1, port 0. */
export async function startTinyFrontend(options: TinyFrontendOptions = {}): Promise<TinyFrontend> {
  const handler = connectNodeAdapter({ routes });
  const server = options.tls
    ? http2.createSecureServer(
        {
          cert: options.tls.cert,
          key: options.tls.key,
          ...(options.tls.ca ? { ca: options.tls.ca } : {}),
          requestCert: options.tls.requireClientCert ?? false,
          rejectUnauthorized: options.tls.requireClientCert ?? false,
        },
        handler,
      )
    : http2.createServer(handler);
  const sessions = { opened: 0, closed: 0 };
  const waiters: { n: number; resolve: () => void }[] = [];
  const live = new Set<http2.ServerHttp2Session>();
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.opened++;
    live.add(session);
    session.on("close", () => {
      live.delete(session);
      sessions.closed++;
      for (const w of waiters.filter((w) => sessions.closed >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
    sessions,
    closedSessions: (n) =>
      sessions.closed >= n
        ? Promise.resolve()
        : new Promise((resolve) => waiters.push({ n, resolve })),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of live) s.destroy();
        server.close(() => resolve());
      }),
  };
}
