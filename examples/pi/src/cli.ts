// The Pi command: options → (emulator) → connect → estimate → one result line.
// Kept apart from main.ts so tests can run the whole command in-process.

import { existsSync } from "node:fs";
import type { Emulator } from "@flame-ts/emulator";
import { type Connection, connect, defaultFlameContextPath } from "@flame-ts/node";
import { estimatePi, type PiEstimate } from "./estimate.js";
import { startPiEmulator } from "./local-emulator.js";
import { parseOptions, USAGE, UsageError } from "./options.js";
import { createProgress } from "./progress.js";

export interface CliIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** FLAME_ENDPOINT, HOME (for ~/.flame/flame.yaml) and the other FLAME_* variables. */
  env: Record<string, string | undefined>;
  /** Aborting (e.g. on Ctrl-C) stops the job and closes the session. */
  signal?: AbortSignal;
}

/** Exit codes: 0 done, 1 the job failed, 2 the command line was wrong, 130 interrupted. */
export async function runCli(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  let options: ReturnType<typeof parseOptions>;
  try {
    options = parseOptions(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`pi: ${error.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (options.help) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }

  let emulator: Emulator | undefined;
  let connection: Connection | undefined;
  try {
    const useEmulator =
      options.emulator || (options.endpoint === undefined && !hasFlameContext(io.env));
    if (useEmulator) {
      emulator = await startPiEmulator(options.app);
      const why = options.emulator
        ? "--emulator"
        : "no Flame endpoint configured (--endpoint, FLAME_ENDPOINT or ~/.flame/flame.yaml)";
      io.stderr.write(
        `pi: ${why}: started the Flame emulator in this process at ${emulator.url}, application "${options.app}" runs the Pi handler\n`,
      );
    }
    const endpoint = emulator?.url ?? options.endpoint;
    connection = await connect(endpoint, { env: io.env });

    const progress = createProgress(options.taskNum, { stream: io.stderr });
    let estimate: PiEstimate;
    try {
      estimate = await estimatePi(connection, {
        app: options.app,
        taskNum: options.taskNum,
        samples: options.taskInput,
        onProgress: (done) => progress.update(done),
        onWarning: (message) => io.stderr.write(`pi: warning: ${message}\n`),
        ...(io.signal ? { signal: io.signal } : {}),
      });
    } finally {
      progress.stop();
    }
    io.stdout.write(`${formatEstimate(estimate)}\n`);
    return 0;
  } catch (error) {
    io.stderr.write(`pi: ${error instanceof Error ? error.message : String(error)}\n`);
    // Interrupted: the shell's convention for SIGINT.
    return io.signal?.aborted ? 130 : 1;
  } finally {
    await connection?.close();
    await emulator?.close();
  }
}

/**
 * The result line, in the form Flame's Rust Pi client prints. The value is
 * JavaScript's own number formatting (`String(4 * inside / total)`), e.g.
 * `pi = 4*(785398/1000000) = 3.141592`.
 */
export function formatEstimate({ inside, total, pi }: Pick<PiEstimate, "inside" | "total" | "pi">) {
  return `pi = 4*(${inside}/${total}) = ${pi}`;
}

/** Whether a Flame context is configured: FLAME_ENDPOINT or ~/.flame/flame.yaml. */
export function hasFlameContext(env: Record<string, string | undefined>): boolean {
  if (env.FLAME_ENDPOINT) return true;
  return existsSync(defaultFlameContextPath(env));
}

function processIO(): CliIO {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}
