// The job figure: a job of N tasks (64 in flight) through the public API
// (Session.runAll), beside the same job on the bare generated connect-node
// client doing the plain per-task pattern: CreateTask, then a WatchTask
// stream until the task is terminal. Same emulator process (its own), same
// machine, alternating rounds after a warm-up; each round gives a ratio, and
// the figures are the medians of those ratios.
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Frontend, TaskState } from "@flame-ts/core/gen";
import { type Connection, connect } from "@flame-ts/node";
import type { BenchCase, BenchContext } from "./context.js";
import { type EmulatorProcess, startEmulatorProcess } from "./emulator-process.js";
import { closedLoop, type LoadResult, median } from "./load.js";
import { fmt, met, ratio } from "./table.js";

const concurrency = 64;
const input = new TextEncoder().encode("ping");

/** One side's round: the load figures plus the emulator's CPU time per task. */
interface Round extends LoadResult {
  serverMicrosPerTask: number;
}

/** The job on the public API: one session, runAll over N inputs. */
async function apiJob(connection: Connection, tasks: number): Promise<LoadResult> {
  const session = await connection.createSession({ application: "flmexec" });
  const inputs = Array.from({ length: tasks }, () => input);
  const cpu = process.cpuUsage();
  const started = performance.now();
  const results = await session.runAll(inputs, { concurrency });
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const bad = results.filter((r) => r.state !== TaskState.Succeed).length;
  if (bad > 0) throw new Error(`API job: ${bad} of ${tasks} tasks did not succeed`);
  await session.close();
  return {
    total: tasks,
    seconds,
    perSecond: tasks / seconds,
    cpuMicrosPerCall: (used.user + used.system) / tasks,
  };
}

/** The same job by hand on the generated client: CreateTask, then WatchTask to the end. */
async function bareJob(client: ReturnType<typeof bareClient>, tasks: number): Promise<LoadResult> {
  const sessionId = `bench-bare-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  await client.createSession({ sessionId, session: { application: "flmexec" } });
  const result = await closedLoop(tasks, concurrency, async () => {
    const task = await client.createTask({ task: { sessionId, input } });
    const taskId = task.metadata?.id ?? "";
    let state = task.status?.state;
    for await (const update of client.watchTask({ sessionId, taskId })) {
      state = update.status?.state;
    }
    if (state !== TaskState.Succeed) throw new Error(`bare job: task ${taskId} ended ${state}`);
  });
  await client.closeSession({ sessionId });
  return result;
}

const bareClient = (url: string) => createClient(Frontend, createGrpcTransport({ baseUrl: url }));

/** Runs `job` and adds the emulator's CPU time per task (µs) over the same span. */
async function withServerCpu(
  emulator: EmulatorProcess,
  job: () => Promise<LoadResult>,
): Promise<Round> {
  const before = emulator.cpuSeconds();
  const result = await job();
  const after = emulator.cpuSeconds();
  const server = before === undefined || after === undefined ? Number.NaN : (after - before) * 1e6;
  return { ...result, serverMicrosPerTask: server / result.total };
}

export const job: BenchCase = {
  name: "job",
  async run(ctx: BenchContext) {
    const tasks = ctx.size("tasks", 10_000, 200);
    const rounds = ctx.size("rounds", 5, 1);
    const emulator = await startEmulatorProcess();
    const connection = await connect(emulator.url);
    const client = bareClient(emulator.url);
    try {
      const warm = Math.min(tasks, ctx.smoke ? 20 : 2_000);
      await bareJob(client, warm);
      await apiJob(connection, warm);
      const ours: Round[] = [];
      const bare: Round[] = [];
      for (let i = 0; i < rounds; i++) {
        // Alternate which side goes first, so neither always follows the other.
        const runOurs = () => withServerCpu(emulator, () => apiJob(connection, tasks));
        const runBare = () => withServerCpu(emulator, () => bareJob(client, tasks));
        if (i % 2 === 0) {
          ours.push(await runOurs());
          bare.push(await runBare());
        } else {
          bare.push(await runBare());
          ours.push(await runOurs());
        }
        const o = ours.at(-1) as Round;
        const b = bare.at(-1) as Round;
        ctx.log(
          `round ${i + 1}: runAll ${fmt.rate(o.perSecond, "tasks/s")} ` +
            `(client ${Math.round(o.cpuMicrosPerCall ?? 0)} µs, emulator ${Math.round(o.serverMicrosPerTask)} µs per task), ` +
            `bare ${fmt.rate(b.perSecond, "tasks/s")} ` +
            `(client ${Math.round(b.cpuMicrosPerCall ?? 0)} µs, emulator ${Math.round(b.serverMicrosPerTask)} µs)`,
        );
      }
      const perRound = (f: (r: Round) => number) => ours.map((o, i) => f(o) / f(bare[i] as Round));
      const rateRatio = median(perRound((r) => r.perSecond));
      const serverRatio = median(perRound((r) => r.serverMicrosPerTask));
      const clientRatio = median(perRound((r) => r.cpuMicrosPerCall ?? Number.NaN));
      const med = (side: Round[], f: (r: Round) => number) => median(side.map(f));
      const n = tasks.toLocaleString("en-US");
      const baseline = "(bare connect-node client)";
      return [
        {
          case: "job",
          figure: `${n} tasks through runAll, ${concurrency} in flight: tasks/s (median of ${rounds} round${rounds === 1 ? "" : "s"})`,
          ours: fmt.rate(
            med(ours, (r) => r.perSecond),
            "tasks/s",
          ),
          baseline: `${fmt.rate(
            med(bare, (r) => r.perSecond),
            "tasks/s",
          )} ${baseline}`,
          ratio: ratio(rateRatio, 1),
          goal: ">= 1.20x",
          met: met(rateRatio, 1.2, ">="),
        },
        {
          case: "job",
          figure: "emulator CPU per task",
          ours: `${Math.round(med(ours, (r) => r.serverMicrosPerTask))} µs`,
          baseline: `${Math.round(med(bare, (r) => r.serverMicrosPerTask))} µs ${baseline}`,
          ratio: ratio(serverRatio, 1),
          goal: "<= 1.00x",
          met: met(serverRatio, 1, "<="),
        },
        {
          case: "job",
          figure: "client CPU per task",
          ours: `${Math.round(med(ours, (r) => r.cpuMicrosPerCall ?? Number.NaN))} µs`,
          baseline: `${Math.round(med(bare, (r) => r.cpuMicrosPerCall ?? Number.NaN))} µs ${baseline}`,
          ratio: ratio(clientRatio, 1),
          goal: "",
          met: "",
        },
      ];
    } finally {
      await connection.close();
      await emulator.close();
    }
  },
};
