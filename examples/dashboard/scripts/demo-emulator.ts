import { type Emulator, type EmulatorOptions, startEmulator } from "@flame-ts/emulator";

export interface DemoOptions extends EmulatorOptions {
  /** Longest time a demo task sleeps before it answers (ms); default 800. */
  maxTaskMs?: number;
}

/**
 * An emulator with a `demo` application whose tasks sleep a little (so the
 * dashboard has something to watch) and then echo their input back.
 */
export async function startDemoEmulator(options: DemoOptions = {}): Promise<Emulator> {
  const { maxTaskMs = 800, ...emulatorOptions } = options;
  const emulator = await startEmulator({
    corsOrigins: "localhost",
    // A few executors, so a run of tasks visibly queues: Pending, Running, Succeed.
    maxExecutors: 4,
    ...emulatorOptions,
    applications: {
      demo: { description: "Sleeps a moment, then echoes its input" },
      ...emulatorOptions.applications,
    },
  });
  const decoder = new TextDecoder();
  emulator.serve("demo", async ({ input, taskId, signal }) => {
    const ms = Math.round(maxTaskMs / 4 + Math.random() * (maxTaskMs * 0.75));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(new Error("cancelled"));
      });
    });
    const text = input ? decoder.decode(input) : "";
    return JSON.stringify({ task: taskId, echo: text, sleptMs: ms });
  });
  return emulator;
}
