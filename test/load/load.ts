// Load: N tasks through one client and the emulator, checking that every
// result comes back exactly once with its own output. Run it with
//   npx tsx --conditions=@flame-ts/source test/load/load.ts [N] [CONCURRENCY]
// (or LOAD_TASKS / LOAD_CONCURRENCY); it prints its figures as JSON and exits
// non-zero if anything was lost or duplicated. load.test.ts runs it small.
import { pathToFileURL } from "node:url";
import { codecs, TaskState } from "@flame-ts/core";
import { startEmulator } from "@flame-ts/emulator";
import { connect } from "@flame-ts/node";

export interface LoadFigures {
  tasks: number;
  concurrency: number;
  ms: number;
  tasksPerSecond: number;
  succeeded: number;
  lost: number;
  duplicated: number;
  wrongOutput: number;
  /** Tasks the emulator holds for the session at the end, and its CreateTask count. */
  serverTasks: number;
  serverCreates: number;
  openStreamsAfter: number;
  heapUsedMB: number;
}

export async function runLoad(tasks: number, concurrency = 128): Promise<LoadFigures> {
  const emulator = await startEmulator({ port: 0, maxExecutors: concurrency });
  const connection = await connect(emulator.url);
  try {
    const session = await connection.createSession({
      application: "flmexec",
      codec: codecs.string,
    });
    const seen = new Uint32Array(tasks);
    let succeeded = 0;
    let wrongOutput = 0;
    const started = Date.now();
    // Inputs are made lazily: 100,000 strings would be fine, but this keeps
    // the client's memory to what is in flight.
    const inputs = { length: tasks } as ArrayLike<string>;
    const proxy = new Proxy(inputs, {
      get: (target, key) =>
        typeof key === "string" && /^\d+$/.test(key) ? `task-${key}` : Reflect.get(target, key),
    });
    await new Promise<void>((resolve, reject) => {
      session.runMany(proxy, { concurrency }).subscribe({
        next: ({ index, result }) => {
          seen[index] = (seen[index] ?? 0) + 1;
          if (result.state === TaskState.Succeed) succeeded++;
          if (result.output !== `task-${index}`) wrongOutput++;
        },
        error: reject,
        complete: resolve,
      });
    });
    const ms = Date.now() - started;
    let lost = 0;
    let duplicated = 0;
    for (const n of seen) {
      if (n === 0) lost++;
      if (n > 1) duplicated += n - 1;
    }
    const serverTasks = (await session.listTasks()).length;
    const stats = emulator.stats();
    return {
      tasks,
      concurrency,
      ms,
      tasksPerSecond: Math.round((tasks / ms) * 1000),
      succeeded,
      lost,
      duplicated,
      wrongOutput,
      serverTasks,
      serverCreates: stats.calls.CreateTask ?? 0,
      openStreamsAfter: stats.openStreams,
      heapUsedMB: Math.round(process.memoryUsage().heapUsed / 1024 / 1024),
    };
  } finally {
    await connection.close();
    await emulator.close();
  }
}

/** True when nothing was lost, duplicated or mixed up, on either side. */
export function clean(f: LoadFigures): boolean {
  return (
    f.lost === 0 &&
    f.duplicated === 0 &&
    f.wrongOutput === 0 &&
    f.succeeded === f.tasks &&
    f.serverTasks === f.tasks &&
    f.serverCreates === f.tasks
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const tasks = Number(process.argv[2] ?? process.env.LOAD_TASKS ?? 100_000);
  const concurrency = Number(process.argv[3] ?? process.env.LOAD_CONCURRENCY ?? 128);
  const figures = await runLoad(tasks, concurrency);
  console.log(JSON.stringify(figures));
  process.exitCode = clean(figures) ? 0 : 1;
}
