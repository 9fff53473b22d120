// The gateway in a child process (gateway-child.ts), with its heap and
// counters readable from the benchmark.
import { fileURLToPath } from "node:url";
import type { GatewayStats } from "@flame-ts/gateway";
import { type Child, startChild } from "./child-process.js";
import type { GatewayCommand } from "./gateway-child.js";

export interface GatewayProcess {
  url: string;
  /** heapUsed after a full collection, in bytes. */
  heapUsed(): Promise<number>;
  stats(): Promise<GatewayStats>;
  close(): Promise<void>;
}

const entry = fileURLToPath(new URL("./gateway-child.ts", import.meta.url));
const gatewayCli = fileURLToPath(new URL("../packages/gateway/src/cli.ts", import.meta.url));

/** `flame-gateway` itself (its CLI, as users run it) in front of `upstream`, quiet but for errors. */
export function startGatewayCli(upstream: string): Promise<Child> {
  return startChild(gatewayCli, ["--upstream", upstream, "--port", "0", "--log-level", "error"]);
}

export async function startGatewayProcess(upstream: string): Promise<GatewayProcess> {
  const child = await startChild(entry, [upstream], { ipc: true });
  const waiting = new Map<number, (value: unknown) => void>();
  let nextId = 1;
  child.process.on("message", (message: { id: number; value?: unknown }) => {
    waiting.get(message.id)?.(message.value);
    waiting.delete(message.id);
  });
  const send = (op: GatewayCommand["op"]) =>
    new Promise<unknown>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, resolve);
      child.process.send({ id, op } satisfies GatewayCommand, (err) => {
        if (err) reject(err);
      });
    });
  return {
    url: child.url,
    heapUsed: async () => (await send("heap")) as number,
    stats: async () => (await send("stats")) as GatewayStats,
    close: () => child.stop(),
  };
}
