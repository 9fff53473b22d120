// A handle on V8's gc() without changing how node is started: the flag can
// be set at run time, and a new context then exposes `gc`.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

let collect: (() => void) | undefined = (globalThis as { gc?: () => void }).gc;

/** Full collection, a few times so that weak callbacks and finalizers settle. */
export async function fullGc(): Promise<void> {
  if (!collect) {
    setFlagsFromString("--expose-gc");
    collect = runInNewContext("gc") as () => void;
  }
  for (let i = 0; i < 3; i++) {
    collect();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

export async function heapUsedAfterGc(): Promise<number> {
  await fullGc();
  return process.memoryUsage().heapUsed;
}
