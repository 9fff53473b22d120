// The benchmark suite: `npm run bench` runs every case at full size and
// prints one table; `npm run bench:smoke` runs a tiny size of each (CI) and
// exits non-zero if any case fails to run.
//
//   npm run bench -- [--smoke] [--only <case>[,<case>]] [--tasks N] [--rounds N]
//                    [--watches N] [--gateway-calls N] [--gateway-watches N]
//
// Cases: job, concurrent-watches, bundle-size, gateway-latency,
// gateway-watches. See BENCHMARKS.md for what each figure means.
import * as os from "node:os";
import { bundleSize } from "./bundle-size.js";
import { concurrentWatches } from "./concurrent-watches.js";
import { type BenchCase, type BenchContext, SkipCase } from "./context.js";
import { gatewayLatency } from "./gateway-latency.js";
import { gatewayWatches } from "./gateway-watches.js";
import { job } from "./job.js";
import { formatTable, type Row } from "./table.js";

const cases: BenchCase[] = [job, concurrentWatches, bundleSize, gatewayLatency, gatewayWatches];

const argv = process.argv.slice(2);
const flag = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  if (i >= 0) return argv[i + 1];
  return argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
};

const smoke = argv.includes("--smoke");
const only = flag("only")?.split(",");
const unknown = only?.filter((name) => !cases.some((c) => c.name === name)) ?? [];
if (unknown.length > 0) {
  console.error(
    `unknown case ${unknown.join(", ")}; cases: ${cases.map((c) => c.name).join(", ")}`,
  );
  process.exit(2);
}

const ctx = (name: string): BenchContext => ({
  smoke,
  size(sizeFlag, full, small) {
    const given = flag(sizeFlag);
    if (given === undefined) return smoke ? small : full;
    const n = Number(given);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${sizeFlag} needs a positive integer`);
    return n;
  },
  log: (message) => console.error(`[${name}] ${message}`),
});

const loadBefore = os.loadavg()[0] ?? 0;
const rows: Row[] = [];
let failures = 0;
const started = performance.now();
for (const c of cases.filter((c) => !only || only.includes(c.name))) {
  const t0 = performance.now();
  console.error(`[${c.name}] running${smoke ? " (smoke)" : ""}`);
  try {
    rows.push(...(await c.run(ctx(c.name))));
  } catch (error) {
    const skipped = error instanceof SkipCase;
    // A missing tool only skips its case in smoke mode (CI); a full run must be whole.
    if (!skipped || !smoke) failures++;
    console.error(
      `[${c.name}] ${skipped ? "SKIPPED" : "FAILED"}: ${(error as Error)?.stack ?? error}`,
    );
    rows.push({
      case: c.name,
      figure: skipped ? (error as Error).message : `failed: ${(error as Error)?.message ?? error}`,
      ours: "",
      baseline: "",
      ratio: "",
      goal: "",
      met: skipped ? "skipped" : "failed",
    });
  }
  console.error(`[${c.name}] ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

const cpu = os.cpus()[0]?.model ?? "unknown CPU";
console.log(
  `\nflame-ts benchmarks${smoke ? " (smoke: tiny sizes, figures mean nothing)" : ""} — ` +
    `${new Date().toISOString()}, Node ${process.version}, ${cpu} x${os.cpus().length}, ` +
    `load average ${loadBefore.toFixed(2)} before, ${(os.loadavg()[0] ?? 0).toFixed(2)} after\n`,
);
console.log(formatTable(rows));
console.log(`\n${((performance.now() - started) / 1000).toFixed(1)} s in all`);
// Children and sockets are closed by each case; exit explicitly anyway so a
// stray handle cannot hold CI.
process.exit(failures > 0 ? 1 : 0);
