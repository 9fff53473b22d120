// Gateways started with different Node options side by side against one
// emulator: GetTask calls/s at 64 in flight (as a ratio of direct), the
// gateway process's CPU per call, and p50 at one in flight, every gateway
// measured in alternating rounds so that drift on a busy machine hits all.
//
//   node --import tsx --conditions=@flame-ts/source bench/gateway-node-options.ts \
//     '{"default":"","semi64":"--max-semi-space-size=64"}' [calls per round] [rounds]
import { connect, TaskState } from "@flame-ts/node";
import { lastValueFrom } from "rxjs";
import type { Child } from "./child-process.js";
import { startEmulatorProcess } from "./emulator-process.js";
import { startGatewayCli } from "./gateway-process.js";
import { closedLoop, percentile } from "./load.js";

const variants: Record<string, string> = JSON.parse(process.argv[2] ?? '{"default":""}');
const calls = Number(process.argv[3] ?? 3_000);
const rounds = Number(process.argv[4] ?? 3);

const emulator = await startEmulatorProcess();
const gateways = new Map<string, Child>();
const inherited = process.env.NODE_OPTIONS;
for (const [name, nodeOptions] of Object.entries(variants)) {
  // The child process inherits this process's environment.
  process.env.NODE_OPTIONS = [inherited, nodeOptions].filter(Boolean).join(" ");
  gateways.set(name, await startGatewayCli(emulator.url));
}
if (inherited === undefined) delete process.env.NODE_OPTIONS;
else process.env.NODE_OPTIONS = inherited;

const direct = await connect(emulator.url);
const connections = [direct];
const session = await direct.createSession({ application: "flmexec" });
const created = await session.createTask(new TextEncoder().encode("ping"));
const task = await lastValueFrom(session.watchTask(created.id));
if (task.state !== TaskState.Succeed) throw new Error(`setup task ended ${task.state}`);

interface Path {
  name: string;
  gateway: Child | undefined;
  call: () => Promise<unknown>;
  calls: number;
  seconds: number;
  cpuSeconds: number;
  latencies: number[];
}
const paths: Path[] = [];
for (const [name, gateway] of [["direct", undefined] as const, ...gateways]) {
  const connection = gateway === undefined ? direct : await connect(gateway.url);
  if (gateway !== undefined) connections.push(connection);
  const opened = await connection.openSession(session.id);
  const call = () => opened.getTask(task.id);
  paths.push({ name, gateway, call, calls: 0, seconds: 0, cpuSeconds: 0, latencies: [] });
}
for (const p of paths) await closedLoop(1_000, 64, p.call);
for (let round = 0; round < rounds; round++) {
  for (const p of paths) {
    const cpuBefore = p.gateway?.cpuSeconds() ?? 0;
    const r = await closedLoop(calls, 64, p.call);
    p.calls += r.total;
    p.seconds += r.seconds;
    p.cpuSeconds += (p.gateway?.cpuSeconds() ?? 0) - cpuBefore;
    p.latencies.push(...(await closedLoop(300, 1, p.call, { recordLatency: true })).latencies!);
  }
}
const directRate = (paths[0] as Path).calls / (paths[0] as Path).seconds;
for (const p of paths) {
  const rate = p.calls / p.seconds;
  const cpu =
    p.gateway === undefined
      ? ""
      : `, gateway CPU ${((p.cpuSeconds / p.calls) * 1e6).toFixed(0)} µs/call`;
  const p50 = percentile(Float64Array.from(p.latencies), 50);
  console.log(
    `${p.name}: ${rate.toFixed(0)} calls/s at 64 in flight (${(rate / directRate).toFixed(2)}x direct)${cpu}, p50 ${p50.toFixed(2)} ms at 1 in flight`,
  );
}
for (const c of connections.reverse()) await c.close();
for (const g of gateways.values()) await g.stop();
await emulator.close();
