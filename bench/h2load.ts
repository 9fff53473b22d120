// Driving nghttp2's h2load (Debian: nghttp2-client) as the baseline client:
// a C load generator, about as fast as an HTTP/2 client gets.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { SkipCase } from "./context.js";

const run = promisify(execFile);

/** Debian's path; `H2LOAD=/path/to/h2load` overrides it. */
export const h2loadPath = process.env.H2LOAD ?? "/usr/bin/h2load";
export const h2loadMissing = "h2load missing: apt-get install nghttp2-client";

export interface H2loadOptions {
  url: string;
  requests: number;
  clients: number;
  streams: number;
  /** File holding the request body. */
  dataFile: string;
  headers: Record<string, string>;
}

export interface H2loadResult {
  perSecond: number;
  seconds: number;
  succeeded: number;
  failed: number;
}

export function findH2load(): string {
  if (existsSync(h2loadPath)) return h2loadPath;
  throw new SkipCase(h2loadMissing);
}

export async function h2load(options: H2loadOptions): Promise<H2loadResult> {
  const args = [
    "-n",
    String(options.requests),
    "-c",
    String(options.clients),
    "-m",
    String(options.streams),
    "-t",
    "1",
    "-d",
    options.dataFile,
    ...Object.entries(options.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]),
    options.url,
  ];
  const { stdout } = await run(findH2load(), args, { maxBuffer: 1 << 20 });
  // "finished in 1.02s, 9803.92 req/s, 1.23MB/s"
  const finished = /finished in ([\d.]+)(m?s), ([\d.]+) req\/s/.exec(stdout);
  // "requests: 10000 total, 10000 started, 10000 done, 10000 succeeded, 0 failed, 0 errored, 0 timeout"
  const requests = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(
    stdout,
  );
  if (!finished || !requests) throw new Error(`cannot read h2load's output:\n${stdout}`);
  const seconds = Number(finished[1]) / (finished[2] === "ms" ? 1000 : 1);
  return {
    perSecond: Number(finished[3]),
    seconds,
    succeeded: Number(requests[1]),
    failed: Number(requests[2]),
  };
}
