// Throughput of the emulator as a dev server: N echo tasks over gRPC, each
// created and then watched to its end, with a fixed number in flight.
//
//   node --import tsx --conditions=@flame-ts/source packages/emulator/bench/throughput.ts \
//     [--tasks 10000] [--concurrency 64] [--in-process | --url http://127.0.0.1:8080]
//
// By default the emulator runs in its own process (as `flame-emulator` would),
// so client and server each get a core; --in-process shares one event loop.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Frontend, TaskState } from "@flame-ts/core/gen";
import { startEmulator } from "../src/index.js";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const tasks = arg("tasks", 10_000);
const concurrency = arg("concurrency", 64);
const inProcess = process.argv.includes("--in-process");
const urlIndex = process.argv.indexOf("--url");
const externalUrl = urlIndex >= 0 ? process.argv[urlIndex + 1] : undefined;

interface Server {
  url: string;
  stop: () => Promise<void>;
  /** CPU seconds the server has used so far, when we can tell. */
  cpuSeconds: () => number | undefined;
}

/** utime + stime of a Linux process, in seconds (assumes the usual 100 ticks/s). */
const processCpuSeconds = (pid: number | undefined) => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
};

const startServer = async (): Promise<Server> => {
  if (externalUrl) return { url: externalUrl, stop: async () => {}, cpuSeconds: () => undefined };
  if (inProcess) {
    const emulator = await startEmulator();
    const cpu = () => {
      const usage = process.cpuUsage();
      return (usage.user + usage.system) / 1e6;
    };
    return { url: emulator.url, stop: () => emulator.close(), cpuSeconds: cpu };
  }
  const cli = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--conditions=@flame-ts/source", cli, "--port", "0"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (\S+)/.exec(out);
      if (match?.[1]) resolve(match[1]);
    });
    child.once("exit", () => reject(new Error("emulator exited")));
  });
  return {
    url,
    cpuSeconds: () => processCpuSeconds(child.pid),
    stop: () =>
      new Promise((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
};

const main = async () => {
  const server = await startServer();
  const client = createClient(Frontend, createGrpcTransport({ baseUrl: server.url }));
  const sessionId = `bench-${Date.now()}`;
  await client.createSession({ sessionId, session: { application: "flmexec" } });
  const input = new TextEncoder().encode("ping");

  const runOne = async () => {
    const task = await client.createTask({ task: { sessionId, input } });
    const taskId = task.metadata?.id ?? "";
    let state = task.status?.state;
    for await (const update of client.watchTask({ sessionId, taskId }))
      state = update.status?.state;
    if (state !== TaskState.Succeed) throw new Error(`task ${taskId} ended ${state}`);
  };

  let next = 0;
  const cpuBefore = server.cpuSeconds();
  const started = performance.now();
  const worker = async () => {
    while (next < tasks) {
      next++;
      await runOne();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks) }, worker));
  const seconds = (performance.now() - started) / 1000;
  const cpuAfter = server.cpuSeconds();
  const session = await client.getSession({ sessionId });
  await server.stop();
  console.log(
    `${tasks} tasks, ${concurrency} in flight, ${inProcess ? "in-process" : "separate process"}: ` +
      `${seconds.toFixed(2)} s, ${Math.round(tasks / seconds)} tasks/s ` +
      `(succeed=${session.status?.succeed})`,
  );
  if (cpuBefore !== undefined && cpuAfter !== undefined) {
    const cpu = cpuAfter - cpuBefore;
    console.log(
      `${inProcess ? "process" : "emulator"} CPU: ${cpu.toFixed(2)} s ` +
        `(${Math.round((cpu / seconds) * 100)}% of one core; ` +
        `about ${Math.round(tasks / cpu)} tasks per CPU-second)`,
    );
  }
};

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
