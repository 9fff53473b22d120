// Closed-loop load: `concurrency` callers, each starting its next call when
// the last one ends, until `total` calls are done.

export interface LoadResult {
  total: number;
  seconds: number;
  perSecond: number;
  /** CPU time this process spent during the run, in µs per call (client cost). */
  cpuMicrosPerCall?: number;
  /** Per-call latencies in ms, when asked for. */
  latencies?: Float64Array;
}

export async function closedLoop(
  total: number,
  concurrency: number,
  call: (index: number) => Promise<unknown>,
  { recordLatency = false } = {},
): Promise<LoadResult> {
  const latencies = recordLatency ? new Float64Array(total) : undefined;
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const index = next++;
      if (latencies) {
        const t0 = performance.now();
        await call(index);
        latencies[index] = performance.now() - t0;
      } else {
        await call(index);
      }
    }
  };
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return {
    total,
    seconds,
    perSecond: total / seconds,
    cpuMicrosPerCall: (used.user + used.system) / total,
    ...(latencies ? { latencies } : {}),
  };
}

/** The p-th percentile (0..100) of `values`, nearest-rank. */
export function percentile(values: Float64Array, p: number): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** The median of `values` (the upper middle one for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
