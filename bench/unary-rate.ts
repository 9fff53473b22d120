// Figure 1: GetTask calls/s from our client (Session.getTask over
// @flame-ts/node's HTTP/2 transport) divided by h2load's rate for the same
// request bytes, 64 streams in flight, against the same emulator process.
// Our client spreads 64 calls over two connections (its default past 32
// streams on one), so h2load runs both ways, one connection with 64 streams
// and two with 32 each, and the better of the two is the baseline. Our
// client held to one connection is shown beside h2load on one.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Frontend, GetTaskRequestSchema, TaskSchema } from "@flame-ts/core/gen";
import { connect, TaskState } from "@flame-ts/node";
import { lastValueFrom } from "rxjs";
import type { BenchCase } from "./context.js";
import { startEmulatorProcess } from "./emulator-process.js";
import { grpcCall, grpcFrame, grpcHeaders } from "./grpc-frame.js";
import { findH2load, h2load } from "./h2load.js";
import { best, closedLoop, type LoadResult, medianCpu } from "./load.js";
import { fmt, met, ratio } from "./table.js";

const inFlight = 64;
const path = "/flame.v1.Frontend/GetTask";

export const unaryRate: BenchCase = {
  name: "unary-rate",
  async run(ctx) {
    findH2load(); // skip early, with the install hint, if it is not there
    const calls = ctx.size("calls", 20_000, 300);
    const rounds = ctx.smoke ? 1 : 3;
    const emulator = await startEmulatorProcess();
    const dir = mkdtempSync(join(tmpdir(), "flame-bench-"));
    const connection = await connect(emulator.url);
    const oneConnection = await connect(emulator.url, { http2: { spreadConnections: 1 } });
    try {
      const session = await connection.createSession({ application: "flmexec" });
      const created = await session.createTask(new TextEncoder().encode("ping"));
      // A finished task, so every reply is the same size.
      const task = await lastValueFrom(session.watchTask(created.id));
      if (task.state !== TaskState.Succeed) throw new Error(`setup task ended ${task.state}`);

      const request = create(GetTaskRequestSchema, { taskId: task.id, sessionId: session.id });
      const frame = grpcFrame(toBinary(GetTaskRequestSchema, request));
      const dataFile = join(dir, "get-task.bin");
      writeFileSync(dataFile, frame);

      // h2load would count a gRPC error (HTTP 200 + grpc-status != 0) as a success.
      const check = await grpcCall(emulator.url, path, frame);
      if (check.status !== "0") {
        throw new Error(`GetTask by hand: grpc-status ${check.status} ${check.message ?? ""}`);
      }
      const reply = fromBinary(TaskSchema, check.reply);
      if (reply.metadata?.id !== task.id) throw new Error("GetTask by hand: wrong task in reply");

      const viaH2load = async (requests: number, clients = 1): Promise<LoadResult> => {
        const r = await h2load({
          url: `${emulator.url}${path}`,
          requests,
          clients,
          streams: inFlight / clients,
          dataFile,
          headers: grpcHeaders,
        });
        if (r.succeeded !== requests || r.failed !== 0) {
          throw new Error(`h2load: ${r.succeeded}/${requests} succeeded, ${r.failed} failed`);
        }
        return { total: requests, seconds: r.seconds, perSecond: r.perSecond };
      };
      const viaClient = (requests: number) =>
        closedLoop(requests, inFlight, () => session.getTask(task.id));
      const single = await oneConnection.openSession(session.id);
      const viaOneConnection = (requests: number) =>
        closedLoop(requests, inFlight, () => single.getTask(task.id));
      // The generated client on connect-node alone: what our API sits on.
      const raw = createClient(Frontend, createGrpcTransport({ baseUrl: emulator.url }));
      const viaRaw = (requests: number) =>
        closedLoop(requests, inFlight, () => raw.getTask(request));

      // Warm up every side (JIT in the emulator and in our client), then alternate rounds.
      const warm = Math.min(calls, ctx.smoke ? 50 : 5_000);
      await viaH2load(warm, 1);
      await viaH2load(warm, 2);
      await viaClient(warm);
      await viaOneConnection(warm);
      await viaRaw(warm);
      const ours: LoadResult[] = [];
      const oursOne: LoadResult[] = [];
      const theirs: LoadResult[] = [];
      const theirsOne: LoadResult[] = [];
      const bare: LoadResult[] = [];
      for (let i = 0; i < rounds; i++) {
        ours.push(await viaClient(calls));
        theirsOne.push(await viaH2load(calls, 1));
        theirs.push(await viaH2load(calls, 2));
        oursOne.push(await viaOneConnection(calls));
        bare.push(await viaRaw(calls));
        ctx.log(
          `round ${i + 1}: ours ${fmt.rate(ours.at(-1)!.perSecond)} (one connection ${fmt.rate(oursOne.at(-1)!.perSecond)}), ` +
            `h2load ${fmt.rate(theirsOne.at(-1)!.perSecond)} on one, ${fmt.rate(theirs.at(-1)!.perSecond)} on two, ` +
            `generated client ${fmt.rate(bare.at(-1)!.perSecond)}`,
        );
      }
      const o = best(ours).perSecond;
      const o1 = best(oursOne).perSecond;
      const h1 = best(theirsOne).perSecond;
      const b = Math.max(h1, best(theirs).perSecond);
      const r = best(bare).perSecond;
      const oCpu = medianCpu(ours);
      const rCpu = medianCpu(bare);
      return [
        {
          case: "1 unary rate",
          figure: `GetTask calls/s, ${inFlight} in flight (best of ${rounds})`,
          ours: fmt.rate(o),
          baseline: `${fmt.rate(b)} (h2load, best of 1 or 2 conns)`,
          ratio: ratio(o, b),
          goal: ">= 0.80x",
          met: met(o / b, 0.8, ">="),
        },
        {
          case: "1 unary rate",
          figure: "same, both on one connection",
          ours: fmt.rate(o1),
          baseline: `${fmt.rate(h1)} (h2load, 1 conn)`,
          ratio: ratio(o1, h1),
          goal: "",
          met: "",
        },
        {
          case: "1 unary rate",
          figure: "same, generated client on connect-node (no API)",
          ours: fmt.rate(r),
          baseline: `${fmt.rate(b)} (h2load)`,
          ratio: ratio(r, b),
          goal: "",
          met: "",
        },
        {
          case: "1 unary rate",
          figure: "client CPU per GetTask (median)",
          ours: `${Math.round(oCpu)} µs`,
          baseline: `${Math.round(rCpu)} µs (generated client)`,
          ratio: ratio(oCpu, rCpu),
          goal: "",
          met: "",
        },
      ];
    } finally {
      await oneConnection.close();
      await connection.close();
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
