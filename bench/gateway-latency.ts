// Gateway figures 1 and 2: GetTask rate at 64 calls in flight through the
// gateway, divided by the same calls direct to the emulator (goal >= 0.7x),
// and p50/p99 at one call in flight beside a TCP pipe in Node
// (bench/tcp-pipe.ts, a hop that does nothing) measured in the same run.
// Emulator, gateway and pipe each run in their own process (as their CLIs
// do), and every path is measured in alternating halves so that drift on a
// busy machine hits all of them.
//
// Two clients, each the same on both sides of its ratio:
// - gRPC over HTTP/2 (@flame-ts/node): Node's HTTP/2 server in the gateway;
// - gRPC-Web over HTTP/1.1 (@flame-ts/web, fetch): what a browser does on
//   an http:// gateway, Node's HTTP/1.1 server in the gateway. The emulator
//   speaks gRPC-Web itself, so the direct side needs no gateway.
// When nginx is installed, its grpc_pass (a native HTTP/2 proxy) stands
// beside them for gRPC: the cost of a hop that is not Node.
import { fileURLToPath } from "node:url";
import { connect as connectNode, TaskState } from "@flame-ts/node";
import { connect as connectWeb } from "@flame-ts/web";
import { lastValueFrom } from "rxjs";
import { startChild } from "./child-process.js";
import type { BenchCase } from "./context.js";
import { startEmulatorProcess } from "./emulator-process.js";
import { startGatewayCli } from "./gateway-process.js";
import { closedLoop, percentile } from "./load.js";
import { startNginxGrpcProxy } from "./nginx.js";
import { fmt, met, type Row, ratio } from "./table.js";

const tcpPipe = fileURLToPath(new URL("./tcp-pipe.ts", import.meta.url));

interface Path {
  /** One GetTask of the setup task on this path. */
  call: () => Promise<unknown>;
  latencies: Float64Array[];
  calls: number;
  seconds: number;
}

export const gatewayLatency: BenchCase = {
  name: "gateway-latency",
  async run(ctx) {
    const calls = ctx.size("gateway-calls", 5_000, 100);
    const rateCalls = calls * 4;
    const emulator = await startEmulatorProcess();
    const gateway = await startGatewayCli(emulator.url);
    const pipe = await startChild(tcpPipe, [emulator.url]);
    const nginx = await startNginxGrpcProxy(emulator.url);
    if (nginx === undefined) ctx.log("nginx not installed: no native-proxy row");
    const connections = await Promise.all([
      ...[emulator.url, gateway.url, pipe.url].map((url) => connectNode(url)),
      ...[emulator.url, gateway.url, pipe.url].map((url) => connectWeb(url)),
      ...(nginx ? [connectNode(nginx.url)] : []),
    ]);
    try {
      const [direct] = connections;
      const session = await direct!.createSession({ application: "flmexec" });
      const created = await session.createTask(new TextEncoder().encode("ping"));
      const task = await lastValueFrom(session.watchTask(created.id));
      if (task.state !== TaskState.Succeed) throw new Error(`setup task ended ${task.state}`);
      const paths: Path[] = [];
      for (const c of connections) {
        const opened = await c.openSession(session.id);
        paths.push({ call: () => opened.getTask(task.id), latencies: [], calls: 0, seconds: 0 });
      }
      const [grpcDirect, grpcGateway, grpcPipe, webDirect, webGateway, webPipe] = paths as [
        Path,
        Path,
        Path,
        Path,
        Path,
        Path,
      ];
      const grpcNginx = paths[6];
      const latency = (p: Path, n: number) => closedLoop(n, 1, p.call, { recordLatency: true });
      const rate = (p: Path, n: number) => closedLoop(n, 64, p.call);
      const withRate = [grpcDirect, grpcGateway, webDirect, webGateway];

      const warm = ctx.smoke ? 20 : 2_000;
      for (const p of paths) {
        await latency(p, warm);
        if (withRate.includes(p)) await rate(p, warm);
      }
      for (let half = 0; half < 2; half++) {
        for (const p of paths) p.latencies.push((await latency(p, calls / 2)).latencies!);
        for (const p of withRate) {
          const r = await rate(p, rateCalls / 2);
          p.calls += r.total;
          p.seconds += r.seconds;
        }
      }
      const pct = (p: Path, q: number) =>
        percentile(Float64Array.from(p.latencies.flatMap((l) => [...l])), q);
      const perSecond = (p: Path) => p.calls / p.seconds;

      const row = (
        figure: string,
        ours: number,
        base: number,
        show: (n: number) => string,
        goal?: number,
      ): Row => ({
        case: "gateway",
        figure,
        ours: show(ours),
        baseline: `${show(base)} (direct)`,
        ratio: ratio(ours, base),
        goal: goal === undefined ? "" : `>= ${goal.toFixed(2)}x`,
        met: goal === undefined ? "" : met(ours / base, goal, ">="),
      });
      const latencyRows = (label: string, through: Path, direct: Path): Row[] => {
        const [o50, b50, o99, b99] = [
          pct(through, 50),
          pct(direct, 50),
          pct(through, 99),
          pct(direct, 99),
        ];
        ctx.log(
          `${label}: p50 ${fmt.ms(o50)} vs ${fmt.ms(b50)}, p99 ${fmt.ms(o99)} vs ${fmt.ms(b99)}`,
        );
        return [
          row(`${label} p50, 1 in flight`, o50, b50, fmt.ms),
          row(`${label} p99, 1 in flight`, o99, b99, fmt.ms),
        ];
      };
      const rows: Row[] = [
        row(
          `gRPC calls/s through the gateway, 64 in flight (${rateCalls} calls)`,
          perSecond(grpcGateway),
          perSecond(grpcDirect),
          fmt.rate,
          0.7,
        ),
        row(
          "gRPC-Web (HTTP/1.1, fetch) calls/s through the gateway, 64 in flight",
          perSecond(webGateway),
          perSecond(webDirect),
          fmt.rate,
          0.7,
        ),
        ...latencyRows(`gRPC through the gateway (${calls} calls)`, grpcGateway, grpcDirect),
        ...latencyRows("gRPC through a TCP pipe in Node", grpcPipe, grpcDirect),
        ...latencyRows("gRPC-Web through the gateway", webGateway, webDirect),
        ...latencyRows("gRPC-Web through a TCP pipe in Node", webPipe, webDirect),
        ...(grpcNginx ? latencyRows("gRPC through nginx grpc_pass", grpcNginx, grpcDirect) : []),
      ];
      return rows;
    } finally {
      for (const c of connections.reverse()) await c.close();
      await nginx?.close();
      await pipe.stop();
      await gateway.stop();
      await emulator.close();
    }
  },
};
