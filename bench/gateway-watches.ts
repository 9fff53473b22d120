// Gateway figure 3: N concurrent WatchTask streams in a browser's protocol
// (gRPC-Web over HTTP/2, as browsers speak it to an https:// gateway; 50
// streams per client connection, as from 20 tabs) through one gateway, in
// its own process, to the emulator. The tasks are created with the
// emulator paused, all N streams are opened through the gateway, then the
// emulator resumes and runs them all. Reports the gateway's heap growth per
// open stream (gc'd heapUsed in the gateway's process with all N open,
// minus before) and that every terminal state came through.
import { setMaxListeners } from "node:events";
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { Frontend } from "@flame-ts/core/gen";
import { connect, isTerminal, TaskState } from "@flame-ts/node";
import { createHeldTasks, until } from "./concurrent-watches.js";
import type { BenchCase } from "./context.js";
import { startEmulatorProcess } from "./emulator-process.js";
import { startGatewayProcess } from "./gateway-process.js";
import { fmt, type Row } from "./table.js";

const streamsPerConnection = 50;

export const gatewayWatches: BenchCase = {
  name: "gateway-watches",
  async run(ctx) {
    const watches = ctx.size("gateway-watches", 1_000, 50);
    const emulator = await startEmulatorProcess();
    const gateway = await startGatewayProcess(emulator.url);
    const connection = await connect(emulator.url);
    const managers = Array.from(
      { length: Math.ceil(watches / streamsPerConnection) },
      () => new Http2SessionManager(gateway.url),
    );
    const clients = managers.map((sessionManager) =>
      createClient(
        Frontend,
        createGrpcWebTransport({
          baseUrl: gateway.url,
          httpVersion: "2",
          useBinaryFormat: true,
          sessionManager,
        }),
      ),
    );
    const abort = new AbortController();
    // One listener per watch on this signal is the point, not a leak.
    setMaxListeners(0, abort.signal);
    try {
      const { session, ids } = await createHeldTasks(emulator, connection, watches);
      const heapBefore = await gateway.heapUsed();
      let terminal = 0;
      const errors: unknown[] = [];
      ids.forEach((taskId, i) => {
        const client = clients[Math.floor(i / streamsPerConnection)] ?? clients[0]!;
        void (async () => {
          for await (const t of client.watchTask(
            { sessionId: session.id, taskId },
            { signal: abort.signal },
          )) {
            if (isTerminal(t.status?.state ?? TaskState.Pending)) terminal++;
          }
        })().catch((e: unknown) => {
          if (!abort.signal.aborted) errors.push(e);
        });
      });
      const check = () => {
        if (errors.length > 0) throw new Error(`${errors.length} watches failed: ${errors[0]}`);
      };
      await until(
        async () => {
          check();
          return (await gateway.stats()).openStreams >= watches;
        },
        `${watches} streams open through the gateway`,
        120_000,
      );
      const heapDuring = await gateway.heapUsed();
      const stats = await gateway.stats();
      ctx.log(
        `${stats.openStreams} streams open, ${stats.upstreamConnections} upstream connections`,
      );
      const resumed = Date.now();
      await emulator.resume();
      await until(
        () => {
          check();
          return terminal === watches;
        },
        "every terminal state",
        300_000,
      );
      const seconds = (Date.now() - resumed) / 1000;
      const perStream = (heapDuring - heapBefore) / watches;
      ctx.log(
        `heap ${fmt.bytesPerItem(perStream)}/stream, all terminal in ${seconds.toFixed(2)} s`,
      );
      const n = watches.toLocaleString("en-US");
      const info = { baseline: "", ratio: "", goal: "", met: "" } as const;
      return [
        {
          case: "gateway",
          figure: `gateway heap per open gRPC-Web (HTTP/2) watch stream, ${n} open`,
          ours: fmt.bytesPerItem(perStream),
          ...info,
        },
        {
          case: "gateway",
          figure: `terminal states delivered through the gateway (${n} watches)`,
          ours: `${terminal}/${watches} in ${seconds.toFixed(2)} s`,
          ...info,
        },
      ] satisfies Row[];
    } finally {
      abort.abort();
      for (const manager of managers) manager.abort();
      await emulator.resume().catch(() => {});
      await connection.close();
      await gateway.close();
      await emulator.close();
    }
  },
};
