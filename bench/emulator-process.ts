// The emulator in a child process, with the controls the in-process API has.
import { fileURLToPath } from "node:url";
import type { EmulatorStats } from "@flame-ts/emulator";
import { type Child, startChild } from "./child-process.js";
import type { EmulatorCommand } from "./emulator-child.js";

export interface EmulatorProcess {
  url: string;
  pause(): Promise<void>;
  resume(): Promise<void>;
  stats(): Promise<EmulatorStats>;
  cpuSeconds(): number | undefined;
  close(): Promise<void>;
}

const entry = fileURLToPath(new URL("./emulator-child.ts", import.meta.url));

export async function startEmulatorProcess(): Promise<EmulatorProcess> {
  const child: Child = await startChild(entry, [], { ipc: true });
  const waiting = new Map<number, (value: unknown) => void>();
  let nextId = 1;
  child.process.on("message", (message: { id: number; value?: unknown }) => {
    waiting.get(message.id)?.(message.value);
    waiting.delete(message.id);
  });
  const send = (op: EmulatorCommand["op"]) =>
    new Promise<unknown>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, resolve);
      child.process.send({ id, op } satisfies EmulatorCommand, (err) => {
        if (err) reject(err);
      });
    });
  let closed = false;
  return {
    url: child.url,
    pause: async () => void (await send("pause")),
    resume: async () => void (await send("resume")),
    stats: async () => (await send("stats")) as EmulatorStats,
    cpuSeconds: () => child.cpuSeconds(),
    async close() {
      if (closed) return;
      closed = true;
      if (child.process.connected) {
        await Promise.race([send("close"), new Promise((r) => setTimeout(r, 5_000))]);
      }
      await child.stop();
    },
  };
}
