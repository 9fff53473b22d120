// Client-side cost of runAll against the raw generated client: CPU time of
// this process only (the emulator runs in another process), since wall time
// on a shared 2-core machine says more about the neighbours than the code.
// Usage: node --conditions=@flame-ts/source --import tsx bench-runmany.mts <url> [N] [C]
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Connection, Frontend, TaskState } from "@flame-ts/core";

const url = process.argv[2] as string;
const N = Number(process.argv[3] ?? 10000);
const C = Number(process.argv[4] ?? 64);

async function raw() {
  const client = createClient(Frontend, createGrpcTransport({ baseUrl: url }));
  const sessionId = `raw-${Date.now()}`;
  await client.createSession({ sessionId, session: { application: "flmexec", batchSize: 1 } });
  let next = 0;
  const input = new Uint8Array([1]);
  const worker = async () => {
    while (next < N) {
      next++;
      const t = await client.createTask({ task: { sessionId, input } });
      if ((t.status?.state ?? 0) >= TaskState.Succeed) continue;
      for await (const u of client.watchTask({ sessionId, taskId: t.metadata?.id ?? "" })) {
        if ((u.status?.state ?? 0) >= TaskState.Succeed) break;
      }
    }
  };
  await Promise.all(Array.from({ length: C }, worker));
}

async function ours() {
  const c = new Connection(createGrpcTransport({ baseUrl: url }));
  const s = await c.createSession({ application: "flmexec" });
  const input = new Uint8Array([1]);
  const r = await s.runAll(
    Array.from({ length: N }, () => input),
    { concurrency: C },
  );
  if (r.length !== N || r.some((x) => x.state !== TaskState.Succeed)) throw new Error("bad");
  await c.close();
}

const measure = async (f: () => Promise<void>) => {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const used = process.cpuUsage(cpu);
  return { cpuMs: (used.user + used.system) / 1000, wallMs: performance.now() - t0 };
};

for (let i = 0; i < 2; i++) {
  const a = await measure(raw);
  const b = await measure(ours);
  console.log(
    `N=${N} C=${C}: raw cpu ${a.cpuMs.toFixed(0)} ms (wall ${a.wallMs.toFixed(0)}), ` +
      `runAll cpu ${b.cpuMs.toFixed(0)} ms (wall ${b.wallMs.toFixed(0)})`,
  );
}
