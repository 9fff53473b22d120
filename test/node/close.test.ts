import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import { afterAll, beforeAll, expect, test } from "vitest";

// connection.close() releases the HTTP/2 session even with a watch stream
// open, so a process that closes its connection exits by itself.

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  emulator.pause(); // tasks stay Pending: the watch stream stays open
});

afterAll(async () => {
  emulator?.resume();
  await emulator?.close();
});

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 20));
}

test("a process with an open watch stream exits after connection.close()", async () => {
  const script = fileURLToPath(new URL("./fixtures/close-then-exit.ts", import.meta.url));
  const child = spawn(
    process.execPath,
    ["--conditions=@flame-ts/source", "--import", "tsx", script, emulator.url],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  let output = "";
  child.stdout.on("data", (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  // A safety net so a regression fails the test instead of hanging vitest.
  const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    await until(() => emulator.stats().openStreams === 1 || child.exitCode !== null);
    expect(emulator.stats().openStreams).toBe(1);
    const cancelledBefore = emulator.stats().streamsCancelled;
    child.stdin.end();
    expect(await exited).toBe(0);
    expect(output).toContain("closed");
    await until(() => emulator.stats().openStreams === 0);
    expect(emulator.stats().streamsCancelled).toBe(cancelledBefore + 1);
  } finally {
    clearTimeout(killer);
    if (child.exitCode === null) child.kill("SIGKILL");
  }
});
