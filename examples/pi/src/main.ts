// Entry point: `tsx --conditions=@flame-ts/source examples/pi/src/main.ts [options]`.
// Ctrl-C once stops the job and closes its session; twice quits at once.

import { runCli } from "./cli.js";

const abort = new AbortController();
process.on("SIGINT", () => {
  if (abort.signal.aborted) {
    if (process.stderr.isTTY) process.stderr.write("\x1b[?25h\n"); // the bar hid the cursor
    process.exit(130);
  }
  process.stderr.write("\npi: interrupted; closing the session (Ctrl-C again to quit now)\n");
  abort.abort(new Error("interrupted"));
});

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: abort.signal,
});
process.exitCode = code;
// Everything is closed by now; should a library still hold a handle, do not hang.
setTimeout(() => process.exit(code), 2_000).unref();
process.removeAllListeners("SIGINT");
