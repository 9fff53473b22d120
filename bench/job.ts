// Figure 2: a job of N tasks (create + watch each to completion, 64 in
// flight) through the high-level API (Session.runAll), divided by the same
// job written directly on the generated Connect client. Same emulator
// process, same machine, alternating rounds after a warm-up.
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Frontend, TaskState } from "@flame-ts/core/gen";
import { type Connection, connect } from "@flame-ts/node";
import type { BenchCase, BenchContext } from "./context.js";
import { startEmulatorProcess } from "./emulator-process.js";
import { best, closedLoop, type LoadResult, medianCpu } from "./load.js";
import { fmt, met, ratio } from "./table.js";

const concurrency = 64;
const input = new TextEncoder().encode("ping");

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
async function rawJob(client: ReturnType<typeof rawClient>, tasks: number): Promise<LoadResult> {
  const sessionId = `bench-raw-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  await client.createSession({ sessionId, session: { application: "flmexec" } });
  const result = await closedLoop(tasks, concurrency, async () => {
    const task = await client.createTask({ task: { sessionId, input } });
    const taskId = task.metadata?.id ?? "";
    let state = task.status?.state;
    for await (const update of client.watchTask({ sessionId, taskId })) {
      state = update.status?.state;
    }
    if (state !== TaskState.Succeed) throw new Error(`raw job: task ${taskId} ended ${state}`);
  });
  await client.closeSession({ sessionId });
  return result;
}

const rawClient = (url: string) => createClient(Frontend, createGrpcTransport({ baseUrl: url }));

export const job: BenchCase = {
  name: "job",
  async run(ctx: BenchContext) {
    const tasks = ctx.size("tasks", 10_000, 200);
    const rounds = ctx.smoke ? 1 : 3;
    const emulator = await startEmulatorProcess();
    const connection = await connect(emulator.url);
    const client = rawClient(emulator.url);
    try {
      const warm = Math.min(tasks, ctx.smoke ? 20 : 2_000);
      await rawJob(client, warm);
      await apiJob(connection, warm);
      const ours: LoadResult[] = [];
      const theirs: LoadResult[] = [];
      for (let i = 0; i < rounds; i++) {
        ours.push(await apiJob(connection, tasks));
        theirs.push(await rawJob(client, tasks));
        ctx.log(
          `round ${i + 1}: API ${fmt.rate(ours.at(-1)!.perSecond, "tasks/s")}, ` +
            `generated client ${fmt.rate(theirs.at(-1)!.perSecond, "tasks/s")}`,
        );
      }
      const o = best(ours);
      const b = best(theirs);
      return [
        {
          case: "2 job",
          figure: `${tasks.toLocaleString("en-US")} tasks, ${concurrency} in flight: tasks/s (best of ${rounds})`,
          ours: `${fmt.rate(o.perSecond, "tasks/s")} (${o.seconds.toFixed(2)} s)`,
          baseline: `${fmt.rate(b.perSecond, "tasks/s")} (generated client)`,
          ratio: ratio(o.perSecond, b.perSecond),
          goal: ">= 0.80x",
          met: met(o.perSecond / b.perSecond, 0.8, ">="),
        },
        {
          case: "2 job",
          figure: "client CPU per task (median)",
          ours: `${Math.round(medianCpu(ours))} µs`,
          baseline: `${Math.round(medianCpu(theirs))} µs (generated client)`,
          ratio: ratio(medianCpu(ours), medianCpu(theirs)),
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
