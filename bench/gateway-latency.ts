// Figure 5: GetTask latency (p50, p99; one call in flight) and rate (64 in
// flight) through the gateway, divided by the same calls direct to the
// emulator. Emulator and gateway each run in their own process (as their
// CLIs do), and every path is measured in alternating halves so that drift
// on a busy machine hits all of them.
//
// Two clients, each the same on both sides of its ratio:
// - gRPC over HTTP/2 (@flame-ts/node), through the gateway's gRPC relay
//   (the default);
// - gRPC-Web over HTTP/1.1 (@flame-ts/web, fetch): what a browser does,
//   through the gateway's gRPC-Web relay (the default). The emulator speaks
//   gRPC-Web itself, so the direct side needs no gateway.
// Beside them, for scale: gRPC-Web over HTTP/2 (connect-node's gRPC-Web
// client over h2c, as browsers speak it to an https:// gateway, which takes
// Node's HTTP/2 server and the byte path), a second gateway started with
// both relays off (Node's servers and the byte path), and a TCP pipe in Node
// (bench/tcp-pipe.ts), a hop that does nothing, which is the least any proxy
// adds on a path. When nginx is installed, its grpc_pass (a native HTTP/2
// proxy, no gRPC-Web) stands in the same place for gRPC: the cost of a hop
// that is not Node. Last, the browser's path again with the emulator
// replaced by a scripted upstream that does no work (bench/scripted-upstream.ts):
// direct to it, through a TCP pipe, and through the gateway to it writing
// its trailers with its data or a turn later (as node:http2 does), which
// tells the gateway's own cost from the emulator's.
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { Frontend } from "@flame-ts/core";
import { GetTaskRequestSchema } from "@flame-ts/core/gen";
import { connect as connectNode, TaskState } from "@flame-ts/node";
import { connect as connectWeb } from "@flame-ts/web";
import { lastValueFrom } from "rxjs";
import { type Child, startChild } from "./child-process.js";
import type { BenchCase } from "./context.js";
import { startEmulatorProcess } from "./emulator-process.js";
import { grpcCall, grpcFrame } from "./grpc-frame.js";
import { closedLoop, percentile } from "./load.js";
import { startNginxGrpcProxy } from "./nginx.js";
import { fmt, met, type Row, ratio } from "./table.js";

const gatewayCli = fileURLToPath(new URL("../packages/gateway/src/cli.ts", import.meta.url));
const tcpPipe = fileURLToPath(new URL("./tcp-pipe.ts", import.meta.url));
const scriptedUpstream = fileURLToPath(new URL("./scripted-upstream.ts", import.meta.url));

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
    const gatewayArgs = (upstream: string) => [
      "--upstream",
      upstream,
      "--port",
      "0",
      "--log-level",
      "error",
    ];
    const gateway = await startChild(gatewayCli, gatewayArgs(emulator.url));
    const unrelayed = await startChild(gatewayCli, [
      ...gatewayArgs(emulator.url),
      "--no-grpc-relay",
      "--no-grpc-web-relay",
    ]);
    const pipe = await startChild(tcpPipe, [emulator.url]);
    const nginx = await startNginxGrpcProxy(emulator.url);
    if (nginx === undefined) ctx.log("nginx not installed: no native-proxy row");
    const connections = [
      await connectNode(emulator.url),
      await connectNode(gateway.url),
      await connectWeb(emulator.url),
      await connectWeb(gateway.url),
      await connectNode(unrelayed.url),
      await connectWeb(unrelayed.url),
      await connectNode(pipe.url),
      await connectWeb(pipe.url),
      ...(nginx ? [await connectNode(nginx.url)] : []),
    ];
    const h2Sessions: Http2SessionManager[] = [];
    const extraChildren: Child[] = [];
    try {
      const [direct] = connections;
      const session = await direct!.createSession({ application: "flmexec" });
      const created = await session.createTask(new TextEncoder().encode("ping"));
      const task = await lastValueFrom(session.watchTask(created.id));
      if (task.state !== TaskState.Succeed) throw new Error(`setup task ended ${task.state}`);
      const paths: Path[] = [];
      const path = (call: () => Promise<unknown>): Path => ({
        call,
        latencies: [],
        calls: 0,
        seconds: 0,
      });
      for (const c of connections) {
        const opened = await c.openSession(session.id);
        paths.push(path(() => opened.getTask(task.id)));
      }
      // Generated gRPC-Web clients over HTTP/2, direct and through the gateway.
      const [webH2Direct, webH2Gateway] = [emulator.url, gateway.url].map((baseUrl) => {
        const sessionManager = new Http2SessionManager(baseUrl);
        h2Sessions.push(sessionManager);
        const transport = createGrpcWebTransport({
          baseUrl,
          httpVersion: "2",
          useBinaryFormat: true,
          sessionManager,
        });
        const client = createClient(Frontend, transport);
        return path(() => client.getTask({ sessionId: session.id, taskId: task.id }));
      }) as [Path, Path];
      paths.push(webH2Direct, webH2Gateway);
      // The scripted upstream answers with the emulator's own reply bytes.
      const getTask = create(GetTaskRequestSchema, { sessionId: session.id, taskId: task.id });
      const sample = await grpcCall(
        emulator.url,
        `/${Frontend.typeName}/${Frontend.method.getTask.name}`,
        grpcFrame(toBinary(GetTaskRequestSchema, getTask)),
      );
      if (sample.status !== "0") throw new Error(`GetTask by hand: grpc-status ${sample.status}`);
      const reply = Buffer.from(sample.reply).toString("hex");
      const startExtra = async (entry: string, args: string[]) => {
        const child = await startChild(entry, args);
        extraChildren.push(child);
        return child;
      };
      const withData = await startExtra(scriptedUpstream, [
        "--trailers",
        "with-data",
        "--reply",
        reply,
      ]);
      const nextTurn = await startExtra(scriptedUpstream, [
        "--trailers",
        "next-turn",
        "--reply",
        reply,
      ]);
      for (const url of [
        withData.url,
        (await startExtra(tcpPipe, [withData.url])).url,
        (await startExtra(gatewayCli, gatewayArgs(withData.url))).url,
        (await startExtra(gatewayCli, gatewayArgs(nextTurn.url))).url,
      ]) {
        const c = await connectWeb(url);
        connections.push(c);
        const opened = await c.openSession(session.id);
        paths.push(path(() => opened.getTask(task.id)));
      }
      const [webScripted, webScriptedPipe, webScriptedGateway, webScriptedNextTurn] = paths.slice(
        -4,
      ) as [Path, Path, Path, Path];
      const [
        grpcDirect,
        grpcGateway,
        webDirect,
        webGateway,
        grpcUnrelayed,
        webUnrelayed,
        grpcPipe,
        webPipe,
      ] = paths as [Path, Path, Path, Path, Path, Path, Path, Path];
      const grpcNginx = nginx ? paths[8] : undefined;
      const latency = (p: Path, n: number) => closedLoop(n, 1, p.call, { recordLatency: true });
      const rate = (p: Path, n: number) => closedLoop(n, 64, p.call);
      const withRate = [grpcDirect, grpcGateway, webDirect, webGateway];

      // Warm up every process on every path.
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
      const joined = (p: Path) => {
        const all = new Float64Array(p.latencies.reduce((n, l) => n + l.length, 0));
        let at = 0;
        for (const l of p.latencies) {
          all.set(l, at);
          at += l.length;
        }
        return all;
      };
      const pct = (p: Path, q: number) => percentile(joined(p), q);
      const perSecond = (p: Path) => p.calls / p.seconds;

      const rows: Row[] = [];
      /** p50 and p99 of `through` against `direct` (and logs them). */
      const latencyOf = (label: string, through: Path, direct: Path) => {
        const [o50, b50, o99, b99] = [
          pct(through, 50),
          pct(direct, 50),
          pct(through, 99),
          pct(direct, 99),
        ];
        ctx.log(
          `${label}: p50 ${fmt.ms(o50)} vs ${fmt.ms(b50)}, p99 ${fmt.ms(o99)} vs ${fmt.ms(b99)}`,
        );
        return { o50, b50, o99, b99 };
      };
      const row = (figure: string, o: number, b: number, show: (n: number) => string) => ({
        case: "5 gateway",
        figure,
        ours: show(o),
        baseline: `${show(b)} (direct)`,
        ratio: ratio(o, b),
      });
      const info = { goal: "", met: "" } as const;
      /** The three rows of one client: p50 (the goal), p99, and calls/s at 64 in flight. */
      const clientRows = (label: string, p50Figure: string, through: Path, direct: Path): Row[] => {
        const l = latencyOf(label, through, direct);
        return [
          {
            ...row(p50Figure, l.o50, l.b50, fmt.ms),
            goal: "<= 1.30x",
            met: met(l.o50 / l.b50, 1.3, "<="),
          },
          { ...row(`${label} p99, 1 in flight`, l.o99, l.b99, fmt.ms), ...info },
          {
            ...row(
              `${label} calls/s, 64 in flight`,
              perSecond(through),
              perSecond(direct),
              fmt.rate,
            ),
            ...info,
          },
        ];
      };
      rows.push(
        ...clientRows("gRPC", `gRPC p50, 1 in flight (${calls} calls)`, grpcGateway, grpcDirect),
        ...clientRows(
          "gRPC-Web",
          "gRPC-Web (HTTP/1.1, fetch) p50, 1 in flight",
          webGateway,
          webDirect,
        ),
      );
      /** A p50 row for scale, without a goal. */
      const p50Row = (label: string, figure: string, through: Path, direct: Path): Row => {
        const l = latencyOf(label, through, direct);
        return { ...row(figure, l.o50, l.b50, fmt.ms), ...info };
      };
      rows.push(
        p50Row(
          "gRPC, relays off",
          "gRPC p50 with --no-grpc-relay (Node's HTTP/2 server, the byte path)",
          grpcUnrelayed,
          grpcDirect,
        ),
        p50Row(
          "gRPC-Web over HTTP/2",
          "gRPC-Web over HTTP/2 p50 (connect-node, h2c; Node's HTTP/2 server, the byte path)",
          webH2Gateway,
          webH2Direct,
        ),
        p50Row(
          "gRPC-Web, relays off",
          "gRPC-Web p50 with --no-grpc-web-relay (Node's HTTP/1.1 server, the byte path)",
          webUnrelayed,
          webDirect,
        ),
        p50Row(
          "gRPC via a TCP pipe",
          "gRPC p50 through a TCP pipe in Node (a hop that does nothing)",
          grpcPipe,
          grpcDirect,
        ),
        p50Row(
          "gRPC-Web via a TCP pipe",
          "gRPC-Web p50 through a TCP pipe in Node (the emulator answers gRPC-Web)",
          webPipe,
          webDirect,
        ),
      );
      rows.push(
        p50Row(
          "gRPC-Web via a TCP pipe to the scripted upstream",
          "gRPC-Web p50 through a TCP pipe, to a scripted upstream that does no work",
          webScriptedPipe,
          webScripted,
        ),
        p50Row(
          "gRPC-Web via the gateway to the scripted upstream",
          "gRPC-Web p50 through the gateway, to a scripted upstream writing trailers with data",
          webScriptedGateway,
          webScripted,
        ),
        p50Row(
          "gRPC-Web via the gateway to the scripted upstream, trailers a turn later",
          "same, the upstream writing its trailers a turn later (as node:http2 does)",
          webScriptedNextTurn,
          webScripted,
        ),
      );
      if (grpcNginx !== undefined) {
        rows.push(
          p50Row(
            "gRPC via nginx",
            "gRPC p50 through nginx grpc_pass (native proxy)",
            grpcNginx,
            grpcDirect,
          ),
        );
      }
      return rows;
    } finally {
      for (const manager of h2Sessions) manager.abort();
      for (const c of connections.reverse()) await c.close();
      for (const child of extraChildren.reverse()) await child.stop();
      await nginx?.close();
      await pipe.stop();
      await unrelayed.stop();
      await gateway.stop();
      await emulator.close();
    }
  },
};
