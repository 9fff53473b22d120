// The watches figure: N concurrent watchTask Observables in one Node process against
// the emulator (in its own process). The tasks are created with the emulator
// paused, all N watches are subscribed (ours: each has its current state;
// past the connection's watch budget they share a ListTask poll; bare: each
// stream is open at the server), then the emulator resumes and runs them
// all. Reports: every terminal state delivered; heap growth per open watch
// (gc'd heapUsed while all are subscribed, minus before subscribing); and
// the time from the last task's completion (its completionTime, stamped by
// the emulator) to the delivery of the last terminal state. The baseline is
// N bare WatchTask streams on the generated Connect client (no GetTask, no
// resume, no Observable).
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Frontend } from "@flame-ts/core/gen";
import {
  type Connection,
  connect,
  isTerminal,
  type Session,
  type Task,
  TaskState,
} from "@flame-ts/node";
import type { BenchCase, BenchContext } from "./context.js";
import { type EmulatorProcess, startEmulatorProcess } from "./emulator-process.js";
import { heapUsedAfterGc } from "./gc.js";
import { closedLoop } from "./load.js";
import { fmt, met, ratio } from "./table.js";

export async function until(
  probe: () => boolean | Promise<boolean>,
  what: string,
  limitMs: number,
) {
  const deadline = Date.now() + limitMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface WatchFigures {
  terminal: number;
  succeeded: number;
  heapPerWatch: number;
  /** ms from the last completionTime to the last terminal state delivered. */
  lag: number;
  /** s from resume to the last terminal state delivered. */
  allDone: number;
}

/** Counters shared by both kinds of watcher. */
class Tally {
  opened = 0;
  terminal = 0;
  succeeded = 0;
  lastDelivery = 0;
  lastCompletion = 0;
  errors: unknown[] = [];

  deliver(state: TaskState, completionMs: number) {
    this.terminal++;
    if (state === TaskState.Succeed) this.succeeded++;
    this.lastDelivery = Math.max(this.lastDelivery, Date.now());
    this.lastCompletion = Math.max(this.lastCompletion, completionMs);
  }

  check() {
    if (this.errors.length > 0) {
      throw new Error(`${this.errors.length} watches failed: ${this.errors[0]}`);
    }
  }
}

/**
 * Opens a session and creates `count` tasks in it with the emulator paused,
 * so that none of them starts until it resumes.
 */
export async function createHeldTasks(
  emulator: EmulatorProcess,
  connection: Connection,
  count: number,
): Promise<{ session: Session; ids: string[] }> {
  const session = await connection.createSession({ application: "flmexec" });
  await emulator.pause();
  const ids: string[] = new Array(count);
  const input = new TextEncoder().encode("ping");
  await closedLoop(count, 64, async (i) => {
    ids[i] = (await session.createTask(input)).id;
  });
  return { session, ids };
}

/**
 * Creates N tasks with the emulator paused, opens N watches with `open`
 * (in batches, each waiting until its watches are open at the server), then
 * resumes the emulator and waits for every terminal state.
 */
async function measure(
  ctx: BenchContext,
  emulator: EmulatorProcess,
  connection: Connection,
  watches: number,
  open: (session: Session, taskId: string, tally: Tally) => () => void,
  /** Whether a watch counts itself in `tally.opened` (ours: on its first state). */
  selfCounting: boolean,
): Promise<WatchFigures> {
  const { session, ids } = await createHeldTasks(emulator, connection, watches);
  const tally = new Tally();
  const closers: (() => void)[] = [];
  const baseStreams = (await emulator.stats()).openStreams;
  try {
    const heapBefore = await heapUsedAfterGc();
    const batch = 1_000;
    for (let start = 0; start < watches; start += batch) {
      const end = Math.min(watches, start + batch);
      for (let i = start; i < end; i++) closers.push(open(session, ids[i] as string, tally));
      await until(
        async () => {
          tally.check();
          // Ours: every watch has its current state (past the connection's
          // stream budget, watches share a ListTask poll and hold no stream).
          if (selfCounting) return tally.opened >= end;
          const streams = (await emulator.stats()).openStreams - baseStreams;
          return streams >= end;
        },
        `${end} watches to open`,
        120_000,
      );
    }
    const heapDuring = await heapUsedAfterGc();
    ctx.log(`${(await emulator.stats()).openStreams - baseStreams} streams open at the server`);
    const resumed = Date.now();
    await emulator.resume();
    await until(
      () => {
        tally.check();
        return tally.terminal === watches;
      },
      "every terminal state",
      300_000,
    );
    return {
      terminal: tally.terminal,
      succeeded: tally.succeeded,
      heapPerWatch: (heapDuring - heapBefore) / watches,
      lag: tally.lastDelivery - tally.lastCompletion,
      allDone: (tally.lastDelivery - resumed) / 1000,
    };
  } finally {
    for (const close of closers) close();
    await emulator.resume();
    ctx.log(`${tally.terminal}/${watches} terminal states`);
  }
}

export const concurrentWatches: BenchCase = {
  name: "concurrent-watches",
  async run(ctx) {
    const watches = ctx.size("watches", 10_000, 200);
    const emulator = await startEmulatorProcess();
    const connection = await connect(emulator.url);
    const client = createClient(Frontend, createGrpcTransport({ baseUrl: emulator.url }));
    try {
      const ours = await measure(
        ctx,
        emulator,
        connection,
        watches,
        (session, taskId, tally) => {
          let seen = false;
          const subscription = session.watchTask(taskId).subscribe({
            next: (task: Task) => {
              if (!seen) {
                seen = true;
                tally.opened++;
              }
              if (isTerminal(task.state)) {
                tally.deliver(task.state, task.completionTime?.getTime() ?? 0);
              }
            },
            error: (err: unknown) => tally.errors.push(err),
          });
          return () => subscription.unsubscribe();
        },
        true,
      );
      ctx.log(
        `ours: heap ${fmt.bytesPerItem(ours.heapPerWatch)}/watch, lag ${fmt.ms(ours.lag)}, all in ${ours.allDone.toFixed(2)} s`,
      );
      const raw = await measure(
        ctx,
        emulator,
        connection,
        watches,
        ({ id: sessionId }, taskId, tally) => {
          const abort = new AbortController();
          void (async () => {
            for await (const t of client.watchTask(
              { sessionId, taskId },
              { signal: abort.signal },
            )) {
              const state = t.status?.state ?? TaskState.Pending;
              if (isTerminal(state)) tally.deliver(state, Number(t.status?.completionTime ?? 0n));
            }
          })().catch((err: unknown) => {
            if (!abort.signal.aborted) tally.errors.push(err);
          });
          return () => abort.abort();
        },
        false,
      );
      ctx.log(
        `raw: heap ${fmt.bytesPerItem(raw.heapPerWatch)}/watch, lag ${fmt.ms(raw.lag)}, all in ${raw.allDone.toFixed(2)} s`,
      );
      const n = watches.toLocaleString("en-US");
      return [
        {
          case: "watches",
          figure: `${n} concurrent watchTask: terminal states delivered`,
          ours: `${ours.terminal}/${watches} (${ours.succeeded} Succeed)`,
          baseline: `${raw.terminal}/${watches} (bare WatchTask)`,
          ratio: "",
          goal: "all",
          met: ours.terminal === watches && ours.succeeded === watches ? "yes" : "no",
        },
        {
          case: "watches",
          figure: "heap growth per open watch (after gc)",
          ours: fmt.bytesPerItem(ours.heapPerWatch),
          baseline: fmt.bytesPerItem(raw.heapPerWatch),
          ratio: ratio(ours.heapPerWatch, raw.heapPerWatch),
          goal: "<= 5 KB",
          met: met(ours.heapPerWatch, 5 * 1024, "<="),
        },
        {
          case: "watches",
          figure: "last completion -> last delivery",
          ours: fmt.ms(ours.lag),
          baseline: fmt.ms(raw.lag),
          ratio: "",
          goal: "",
          met: "",
        },
        {
          case: "watches",
          figure: "resume -> every terminal state delivered",
          ours: `${ours.allDone.toFixed(2)} s`,
          baseline: `${raw.allDone.toFixed(2)} s`,
          ratio: "",
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
