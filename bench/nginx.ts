// nginx's grpc_pass as a native HTTP/2 gRPC proxy, for a side-by-side row in
// the gateway case: how much a hop costs when it is not Node. Optional:
// without nginx (Debian: nginx-light) the row is left out.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Debian's path; `NGINX=/path/to/nginx` overrides it. */
const nginxPath = process.env.NGINX ?? "/usr/sbin/nginx";

export interface NativeProxy {
  url: string;
  close(): Promise<void>;
}

/** Starts nginx forwarding h2c gRPC to `upstream`, or undefined when nginx is not installed. */
export async function startNginxGrpcProxy(upstream: string): Promise<NativeProxy | undefined> {
  if (!existsSync(nginxPath)) return undefined;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "flame-bench-nginx-"));
  const target = new URL(upstream);
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((name) => `${name}_temp_path ${dir};`)
    .join(" ");
  writeFileSync(
    join(dir, "nginx.conf"),
    `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  ${temp}
  upstream flame { server ${target.hostname}:${target.port}; keepalive 16; }
  server {
    listen 127.0.0.1:${port} http2;
    location / { grpc_pass grpc://flame; }
  }
}
`,
  );
  const child: ChildProcess = spawn(nginxPath, ["-p", dir, "-c", join(dir, "nginx.conf")], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await waitForPort(port, exited);
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      if (child.exitCode === null) child.kill("SIGQUIT");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, exited: Promise<void>): Promise<void> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  for (let attempt = 0; attempt < 100; attempt++) {
    if (gone) throw new Error("nginx exited before listening (see its error above)");
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nginx did not listen on port ${port} within 5 s`);
}
