import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll } from "vitest";
import type { TargetConfig } from "./target-config.js";

const entry = fileURLToPath(new URL("./target-process.ts", import.meta.url));
const root = fileURLToPath(new URL("../..", import.meta.url));

/** Timeouts short enough for attacks scaled down to seconds. */
const emulatorLimits = {
  headersTimeoutMs: 1_000,
  requestTimeoutMs: 2_000,
  keepAliveTimeoutMs: 1_000,
};
const gatewayLimits = {
  headersTimeoutMs: 1_000,
  requestTimeoutMs: 2_000,
  idleTimeoutMs: 2_000,
};
const gatewayToken = "hostile-suite-token";

/** One server process under attack. */
export class ServerProcess {
  /** What it wrote to stdout and stderr (its log), in bytes. */
  outputBytes = 0;
  /** Set where the kernel's peak cannot be reset: RSS sampled instead. */
  private sampler: NodeJS.Timeout | undefined;
  private sampledPeak = 0;
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    readonly port: number,
    exited: Promise<void>,
  ) {
    this.exited = exited;
    child.once("exit", (code, signal) => {
      this.exitCode = code ?? (signal ? -1 : null);
    });
    const count = (chunk: Buffer) => {
      this.outputBytes += chunk.length;
    };
    child.stdout?.on("data", count);
    child.stderr?.on("data", count);
  }

  static async start(config: TargetConfig): Promise<ServerProcess> {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--conditions=@flame-ts/source", entry, JSON.stringify(config)],
      { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
    );
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    let output = "";
    const url = await new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const match = /hostile-target (\S+)/.exec(output);
        if (match?.[1]) {
          child.stdout?.off("data", onData);
          resolve(match[1]);
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.once("exit", () =>
        reject(new Error(`${config.kind} exited before listening:\n${output}`)),
      );
    });
    return new ServerProcess(child, url, Number(new URL(url).port), exited);
  }

  get alive(): boolean {
    return this.exitCode === undefined && this.child.exitCode === null;
  }

  /** Resident memory now, from /proc (bytes). */
  rss(): number {
    return statusField(this.child.pid as number, "VmRSS");
  }

  /** The most resident memory since the last `resetPeak()` (bytes). */
  peakRss(): number {
    if (this.sampler === undefined) return statusField(this.child.pid as number, "VmHWM");
    this.sampledPeak = Math.max(this.sampledPeak, this.rss());
    return this.sampledPeak;
  }

  /** TCP connections the process has open, listening socket included. */
  openSockets(): number {
    const dir = `/proc/${this.child.pid}/fd`;
    return fs.readdirSync(dir).filter((fd) => {
      try {
        return fs.readlinkSync(`${dir}/${fd}`).startsWith("socket:");
      } catch {
        return false;
      }
    }).length;
  }

  /** Starts a new peak: the kernel's high-water mark is set back to the RSS now. */
  resetPeak(): void {
    if (this.sampler === undefined) {
      try {
        fs.writeFileSync(`/proc/${this.child.pid}/clear_refs`, "5");
        return;
      } catch {
        // Not allowed here: sample the RSS instead, every 10 ms from now on.
        this.sampler = setInterval(() => {
          if (this.alive) this.sampledPeak = Math.max(this.sampledPeak, this.rss());
        }, 10);
        this.sampler.unref();
      }
    }
    this.sampledPeak = this.rss();
  }

  async stop(): Promise<void> {
    clearInterval(this.sampler);
    if (this.alive) this.child.kill("SIGKILL");
    await this.exited;
  }
}

function statusField(pid: number, field: string): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "latin1");
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** What the attacks are run against: the server under attack and, for a gateway, its upstream. */
export interface Target {
  name: "emulator" | "gateway";
  server: ServerProcess;
  /** The emulator behind a gateway; the server itself for the emulator. */
  upstream: ServerProcess;
  /** Headers a normal client sends (the gateway's bearer token). */
  callHeaders: Record<string, string>;
  stop(): Promise<void>;
}

export async function startTarget(name: Target["name"]): Promise<Target> {
  const emulator = await ServerProcess.start({
    kind: "emulator",
    limits: name === "emulator" ? emulatorLimits : {},
  });
  if (name === "emulator") {
    return {
      name,
      server: emulator,
      upstream: emulator,
      callHeaders: {},
      stop: () => emulator.stop(),
    };
  }
  const gateway = await ServerProcess.start({
    kind: "gateway",
    upstream: emulator.url,
    limits: gatewayLimits,
    bearerToken: gatewayToken,
  }).catch(async (error: unknown) => {
    await emulator.stop();
    throw error;
  });
  return {
    name,
    server: gateway,
    upstream: emulator,
    callHeaders: { authorization: `Bearer ${gatewayToken}` },
    async stop() {
      await gateway.stop();
      await emulator.stop();
    },
  };
}

/**
 * Starts the target `name` before the tests of the enclosing `describe`
 * and stops it after them; call the returned function to reach it.
 */
export function useTarget(name: Target["name"]): () => Target {
  let target: Target | undefined;
  beforeAll(async () => {
    target = await startTarget(name);
  });
  afterAll(async () => {
    await target?.stop();
  });
  return () => {
    if (target === undefined) throw new Error(`the ${name} target did not start`);
    return target;
  };
}
