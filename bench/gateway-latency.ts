// Figure 5: GetTask latency (p50, p99; one call in flight) and rate (64 in
// flight) through the gateway, divided by the same calls direct to the
// emulator. Emulator and gateway each run in their own process (as their
// CLIs do); the client is the same @flame-ts/node connection type in both
// cases (gRPC over HTTP/2), so the ratio is the cost of the extra hop.
import { fileURLToPath } from "node:url";
import { type Connection, connect, TaskState } from "@flame-ts/node";
import { lastValueFrom } from "rxjs";
import { startChild } from "./child-process.js";
import type { BenchCase } from "./context.js";
import { startEmulatorProcess } from "./emulator-process.js";
import { closedLoop, type LoadResult, percentile } from "./load.js";
import { fmt, met, ratio } from "./table.js";

const gatewayCli = fileURLToPath(new URL("../packages/gateway/src/cli.ts", import.meta.url));

export const gatewayLatency: BenchCase = {
  name: "gateway-latency",
  async run(ctx) {
    const calls = ctx.size("gateway-calls", 5_000, 100);
    const rateCalls = calls * 4;
    const emulator = await startEmulatorProcess();
    const gateway = await startChild(gatewayCli, [
      "--upstream",
      emulator.url,
      "--port",
      "0",
      "--log-level",
      "error",
    ]);
    const direct = await connect(emulator.url);
    const through = await connect(gateway.url);
    try {
      const session = await direct.createSession({ application: "flmexec" });
      const created = await session.createTask(new TextEncoder().encode("ping"));
      const task = await lastValueFrom(session.watchTask(created.id));
      if (task.state !== TaskState.Succeed) throw new Error(`setup task ended ${task.state}`);
      const sessionVia = async (c: Connection) => c.openSession(session.id);
      const viaDirect = await sessionVia(direct);
      const viaGateway = await sessionVia(through);

      const latency = (s: typeof viaDirect, n: number) =>
        closedLoop(n, 1, () => s.getTask(task.id), { recordLatency: true });
      const rate = (s: typeof viaDirect, n: number) => closedLoop(n, 64, () => s.getTask(task.id));

      // Warm up every process on the path.
      const warm = ctx.smoke ? 20 : 2_000;
      for (const s of [viaDirect, viaGateway]) {
        await latency(s, warm);
        await rate(s, warm);
      }
      // Alternate halves so that drift on a busy machine hits both sides.
      const lat = { direct: [] as Float64Array[], gateway: [] as Float64Array[] };
      const rates = { direct: [] as LoadResult[], gateway: [] as LoadResult[] };
      for (let half = 0; half < 2; half++) {
        lat.direct.push((await latency(viaDirect, calls / 2)).latencies!);
        lat.gateway.push((await latency(viaGateway, calls / 2)).latencies!);
        rates.direct.push(await rate(viaDirect, rateCalls / 2));
        rates.gateway.push(await rate(viaGateway, rateCalls / 2));
      }
      const joined = (parts: Float64Array[]) => {
        const all = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
        let at = 0;
        for (const p of parts) {
          all.set(p, at);
          at += p.length;
        }
        return all;
      };
      const d = joined(lat.direct);
      const g = joined(lat.gateway);
      const rateOf = (rs: LoadResult[]) =>
        rs.reduce((n, r) => n + r.total, 0) / rs.reduce((s, r) => s + r.seconds, 0);
      const dRate = rateOf(rates.direct);
      const gRate = rateOf(rates.gateway);
      const p = (values: Float64Array, q: number) => percentile(values, q);
      ctx.log(
        `p50 ${fmt.ms(p(g, 50))} vs ${fmt.ms(p(d, 50))}, p99 ${fmt.ms(p(g, 99))} vs ${fmt.ms(p(d, 99))}, ` +
          `${fmt.rate(gRate)} vs ${fmt.rate(dRate)}`,
      );
      const row = (figure: string, o: number, b: number, show: (n: number) => string) => ({
        case: "5 gateway",
        figure,
        ours: show(o),
        baseline: `${show(b)} (direct)`,
        ratio: ratio(o, b),
      });
      return [
        {
          ...row(`GetTask p50, 1 in flight (${calls} calls)`, p(g, 50), p(d, 50), fmt.ms),
          goal: "<= 1.30x",
          met: met(p(g, 50) / p(d, 50), 1.3, "<="),
        },
        {
          ...row("GetTask p99, 1 in flight", p(g, 99), p(d, 99), fmt.ms),
          goal: "",
          met: "",
        },
        {
          ...row("GetTask calls/s, 64 in flight", gRate, dRate, (n) => fmt.rate(n)),
          goal: "",
          met: "",
        },
      ];
    } finally {
      await through.close();
      await direct.close();
      await gateway.stop();
      await emulator.close();
    }
  },
};
