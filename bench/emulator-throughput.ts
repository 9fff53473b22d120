// Figure 6: how many tasks a second the emulator completes with an echo
// handler (each task created, then watched to Succeed, 64 in flight), with
// the emulator in its own process and the lightest client we have (the
// generated Connect client), so the figure is the emulator's. Its CPU time
// gives tasks per emulator CPU-second, which does not depend on the client.
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Frontend, TaskState } from "@flame-ts/core/gen";
import type { BenchCase } from "./context.js";
import { startEmulatorProcess } from "./emulator-process.js";
import { closedLoop } from "./load.js";
import { fmt } from "./table.js";

export const emulatorThroughput: BenchCase = {
  name: "emulator-throughput",
  async run(ctx) {
    const tasks = ctx.size("emulator-tasks", 10_000, 200);
    const emulator = await startEmulatorProcess();
    try {
      const client = createClient(Frontend, createGrpcTransport({ baseUrl: emulator.url }));
      const input = new TextEncoder().encode("ping");
      const job = async (n: number) => {
        const sessionId = `bench-echo-${n}-${Date.now()}`;
        await client.createSession({ sessionId, session: { application: "echo" } });
        const result = await closedLoop(n, 64, async () => {
          const task = await client.createTask({ task: { sessionId, input } });
          const taskId = task.metadata?.id ?? "";
          let last = task;
          for await (const update of client.watchTask({ sessionId, taskId })) last = update;
          if (last.status?.state !== TaskState.Succeed || last.spec?.output?.length !== 4) {
            throw new Error(`echo task ${taskId} ended ${last.status?.state} without its output`);
          }
        });
        await client.closeSession({ sessionId });
        return result;
      };
      await job(Math.min(tasks, ctx.smoke ? 20 : 2_000));
      const cpuBefore = emulator.cpuSeconds();
      const result = await job(tasks);
      const cpuAfter = emulator.cpuSeconds();
      const cpu =
        cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore;
      ctx.log(
        `${tasks} tasks in ${result.seconds.toFixed(2)} s; emulator CPU ${cpu?.toFixed(2) ?? "?"} s`,
      );
      return [
        {
          case: "6 emulator",
          figure: `echo tasks completed/s (${tasks.toLocaleString("en-US")}, 64 in flight)`,
          ours: fmt.rate(result.perSecond, "tasks/s"),
          baseline: "",
          ratio: "",
          goal: "",
          met: "",
        },
        {
          case: "6 emulator",
          figure: "echo tasks per emulator CPU-second",
          ours:
            cpu === undefined || cpu === 0
              ? "n/a"
              : `${fmt.rate(tasks / cpu, "tasks")} (${Math.round((cpu / result.seconds) * 100)}% of a core)`,
          baseline: "",
          ratio: "",
          goal: "",
          met: "",
        },
      ];
    } finally {
      await emulator.close();
    }
  },
};
