// Command-line options of the Pi job, parsed with node:util's parseArgs so
// that unknown options and missing values are errors, not surprises.

import { parseArgs } from "node:util";

export interface PiOptions {
  /** Flame application that runs the tasks. */
  app: string;
  /** How many tasks to run. */
  taskNum: number;
  /** Random samples per task. */
  taskInput: number;
  /** Flame endpoint; when absent the Flame context (FLAME_ENDPOINT, ~/.flame/flame.yaml) decides. */
  endpoint?: string;
  /** Start the emulator in this process, serve the Pi handler, and use it. */
  emulator: boolean;
  /** `--help` was given: print the usage and do nothing else. */
  help: boolean;
}

export const DEFAULTS = { app: "pi", taskNum: 10, taskInput: 10_000 } as const;

export const USAGE = `Usage: pi [options]

Estimates pi with Flame: runs --task-num tasks of --task-input random samples
each and prints  pi = 4*(<inside>/<total>) = <value>

Options:
  --app <name>         Flame application to use (default: ${DEFAULTS.app})
  --task-num <n>       number of tasks, a positive integer (default: ${DEFAULTS.taskNum})
  --task-input <n>     samples per task, a positive integer (default: ${DEFAULTS.taskInput})
  --endpoint <url>     Flame endpoint, e.g. http://flame:8080
                       (default: FLAME_ENDPOINT, then ~/.flame/flame.yaml)
  --emulator           start the Flame emulator in this process with the Pi
                       service and use it (also the default when no endpoint
                       is configured anywhere)
  -h, --help           show this help`;

/** A mistake in the command line: the CLI prints it with the usage and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

export function parseOptions(argv: readonly string[]): PiOptions {
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse(joinNegativeNumbers(argv)).values;
  } catch (error) {
    // parseArgs' messages are clear ("Unknown option '--x'"); keep them.
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }

  const app = values.app ?? DEFAULTS.app;
  if (app.trim() === "") throw new UsageError("--app must not be empty");

  const endpoint = values.endpoint;
  if (endpoint !== undefined) {
    if (endpoint.trim() === "") throw new UsageError("--endpoint must not be empty");
    if (values.emulator) {
      throw new UsageError("--emulator and --endpoint cannot be used together");
    }
  }

  const taskNum = positiveInteger("--task-num", values["task-num"], DEFAULTS.taskNum);
  const taskInput = positiveInteger("--task-input", values["task-input"], DEFAULTS.taskInput);
  if (!Number.isSafeInteger(taskNum * taskInput)) {
    throw new UsageError(
      `--task-num × --task-input is too large to count exactly (${taskNum} × ${taskInput})`,
    );
  }

  return {
    app,
    taskNum,
    taskInput,
    ...(endpoint !== undefined ? { endpoint } : {}),
    emulator: values.emulator ?? false,
    help: values.help ?? false,
  };
}

const NUMERIC_OPTIONS = new Set(["--task-num", "--task-input"]);

// parseArgs calls `--task-num -1` "ambiguous"; read it as `--task-num=-1` so
// the error says what is really wrong: the number is not positive.
function joinNegativeNumbers(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    if (NUMERIC_OPTIONS.has(arg) && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      app: { type: "string" },
      "task-num": { type: "string" },
      "task-input": { type: "string" },
      endpoint: { type: "string" },
      emulator: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
}

/**
 * Only plain decimal digits count: "1e3", "0x10", "1.5", " 7" and "+3" are
 * rejected rather than guessed at.
 */
function positiveInteger(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}
