// Starting a TypeScript entry point (workspace sources) in a child Node
// process and waiting for the URL it prints, so server and client each get
// their own event loop (and, on this 2-core machine, their own core).
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type * as net from "node:net";

const tsxLoader = createRequire(import.meta.url).resolve("tsx");

export interface Child {
  process: ChildProcess;
  url: string;
  /** utime + stime of the child so far, in seconds (Linux /proc; 100 ticks/s). */
  cpuSeconds(): number | undefined;
  /** SIGTERM, then wait for exit. */
  stop(): Promise<void>;
}

/** Runs `entry` (a .ts file) with tsx and the source condition; resolves with the printed URL. */
export async function startChild(
  entry: string,
  args: readonly string[] = [],
  { ipc = false, timeoutMs = 30_000 } = {},
): Promise<Child> {
  const child = spawn(
    process.execPath,
    ["--import", tsxLoader, "--conditions=@flame-ts/source", entry, ...args],
    { stdio: ["ignore", "pipe", "inherit", ...(ipc ? (["ipc"] as const) : [])] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${entry} printed no URL within ${timeoutMs} ms: ${out}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (\S+)/.exec(out);
      if (match?.[1]) {
        clearTimeout(timer);
        child.stdout?.off("data", onData);
        child.stdout?.resume(); // keep draining whatever else it prints
        resolve(match[1]);
      }
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${entry} exited (${code}) before listening: ${out}`));
    });
  });
  let exited = child.exitCode !== null;
  child.once("exit", () => {
    exited = true;
  });
  return {
    process: child,
    url,
    cpuSeconds: () => processCpuSeconds(child.pid),
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/**
 * The child's side, for a child that is a plain TCP server: listens on a
 * loopback port of the system's choosing, prints the line `startChild()`
 * waits for, and exits on SIGINT or SIGTERM.
 */
export function serveAsChild(server: net.Server): void {
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as net.AddressInfo;
    console.log(`listening on http://127.0.0.1:${port}`);
  });
  process.on("SIGINT", () => process.exit(0));
  process.on("SIGTERM", () => process.exit(0));
}
