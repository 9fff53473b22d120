import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import type { Emulator } from "@flame-ts/emulator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../src/cli.js";
import { startPiEmulator } from "../src/local-emulator.js";
import { piHandler } from "../src/pi-service.js";

const RESULT = /^pi = 4\*\((\d+)\/(\d+)\) = (\d+\.\d+)$/;
const ROOT = resolve(import.meta.dirname, "../../..");
const MAIN = "examples/pi/src/main.ts";

function capture() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(String(chunk));
      callback();
    },
  });
  return { stream, lines: () => chunks.join("").split("\n").filter(Boolean) };
}

// A home with no ~/.flame/flame.yaml, so nothing on this machine is picked up.
const emptyHome = mkdtempSync(join(tmpdir(), "pi-home-"));
afterAll(() => rmSync(emptyHome, { recursive: true, force: true }));

describe("pi command in-process", () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startPiEmulator("pi");
  });
  afterAll(async () => {
    await emulator?.close();
  });

  async function run(argv: string[], env: Record<string, string | undefined> = {}) {
    const stdout = capture();
    const stderr = capture();
    const code = await runCli(argv, {
      stdout: stdout.stream,
      stderr: stderr.stream,
      env: { HOME: emptyHome, ...env },
    });
    return { code, stdout: stdout.lines(), stderr: stderr.lines() };
  }

  it("prints exactly the result line for the job at --endpoint", async () => {
    const { code, stdout, stderr } = await run([
      "--endpoint",
      emulator.url,
      "--task-num",
      "25",
      "--task-input",
      "4000",
    ]);
    expect(code).toBe(0);
    expect(stdout).toHaveLength(1);
    const match = RESULT.exec(stdout[0]!);
    expect(match, stdout[0]).not.toBeNull();
    const [, inside, total, value] = match!;
    expect(Number(total)).toBe(25 * 4000);
    expect(value).toBe(String((4 * Number(inside)) / Number(total)));
    expect(Math.abs(Number(value) - Math.PI)).toBeLessThan(0.1);
    // Not a TTY: plain progress lines on stderr, the last one at 100%.
    expect(stderr.filter((l) => /^tasks \d+\/25 \(\d+%\)$/.test(l)).length).toBeGreaterThan(1);
    expect(stderr.at(-1)).toBe("tasks 25/25 (100%)");
  });

  it("takes the endpoint from FLAME_ENDPOINT", async () => {
    const { code, stdout, stderr } = await run(["--task-num", "3", "--task-input", "10"], {
      FLAME_ENDPOINT: emulator.url,
    });
    expect(code).toBe(0);
    expect(stdout[0]).toMatch(/^pi = 4\*\(\d+\/30\) = /);
    expect(stderr.join("\n")).not.toContain("emulator");
  });

  it("takes the endpoint from ~/.flame/flame.yaml", async () => {
    const home = mkdtempSync(join(tmpdir(), "pi-home-"));
    try {
      mkdirSync(join(home, ".flame"));
      writeFileSync(
        join(home, ".flame", "flame.yaml"),
        `current-context: local\ncontexts:\n  - name: local\n    cluster:\n      endpoint: ${emulator.url}\n`,
      );
      const stdout = capture();
      const stderr = capture();
      const code = await runCli(["--task-num", "4", "--task-input", "25"], {
        stdout: stdout.stream,
        stderr: stderr.stream,
        env: { HOME: home },
      });
      expect(code).toBe(0);
      expect(stdout.lines()[0]).toMatch(/^pi = 4\*\(\d+\/100\) = /);
      expect(stderr.lines().join("\n")).not.toContain("emulator");
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("exits 1 with the failing task's message", async () => {
    emulator.serve("pi", (task) => {
      if (task.taskId === "2") throw new Error("no random numbers left");
      return piHandler(task);
    });
    try {
      const { code, stdout, stderr } = await run(["--endpoint", emulator.url, "--task-num", "10"]);
      expect(code).toBe(1);
      expect(stdout).toEqual([]);
      expect(stderr.at(-1)).toBe("pi: no random numbers left");
    } finally {
      emulator.serve("pi", piHandler);
    }
  });

  it("exits 130 when interrupted, after closing the session", async () => {
    const abort = new AbortController();
    emulator.serve("pi", (task) => {
      if (task.taskId === "3") abort.abort(new Error("interrupted"));
      return piHandler(task);
    });
    try {
      const stdout = capture();
      const stderr = capture();
      const code = await runCli(
        ["--endpoint", emulator.url, "--task-num", "500", "--task-input", "10"],
        {
          stdout: stdout.stream,
          stderr: stderr.stream,
          env: { HOME: emptyHome },
          signal: abort.signal,
        },
      );
      expect(code).toBe(130);
      expect(stdout.lines()).toEqual([]);
      expect(stderr.lines().at(-1)).toBe("pi: interrupted");
    } finally {
      emulator.serve("pi", piHandler);
    }
  });

  it("exits 2 with the usage for a bad option", async () => {
    const { code, stdout, stderr } = await run(["--task-input", "abc"]);
    expect(code).toBe(2);
    expect(stdout).toEqual([]);
    expect(stderr[0]).toBe('pi: --task-input must be a positive integer, got "abc"');
    expect(stderr).toContain("Usage: pi [options]");
  });

  it("exits 1 when the cluster cannot be reached", async () => {
    const { code, stderr } = await run(["--endpoint", "http://127.0.0.1:1", "--task-num", "1"]);
    expect(code).toBe(1);
    expect(stderr.at(-1)).toMatch(/^pi: ./);
  });
});

// The entry point as a user runs it, in a child process.
describe("pi command as a process", () => {
  const exec = promisify(execFile);
  const node = (args: string[]) =>
    exec(process.execPath, ["--import", "tsx", "--conditions=@flame-ts/source", MAIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, HOME: emptyHome, FLAME_ENDPOINT: "" },
      timeout: 60_000,
    });

  it("runs the job on the in-process emulator, prints the line and exits 0", async () => {
    const { stdout, stderr } = await node([
      "--emulator",
      "--task-num",
      "20",
      "--task-input",
      "1000",
    ]);
    const lines = stdout.split("\n").filter(Boolean);
    expect(lines).toHaveLength(1);
    const match = RESULT.exec(lines[0]!);
    expect(match, lines[0]).not.toBeNull();
    expect(Number(match![2])).toBe(20_000);
    expect(match![3]).toBe(String((4 * Number(match![1])) / 20_000));
    expect(stderr).toMatch(
      /started the Flame emulator in this process at http:\/\/127\.0\.0\.1:\d+/,
    );
    expect(stderr).toContain("tasks 20/20 (100%)");
  });

  it("starts the emulator by itself when no endpoint is configured", async () => {
    const { stdout, stderr } = await node(["--task-num", "2", "--task-input", "10"]);
    expect(stdout).toMatch(/^pi = 4\*\(\d+\/20\) = /);
    expect(stderr).toContain("no Flame endpoint configured");
  });

  it("exits 2 with a clear message for --task-num 0", async () => {
    const error = await node(["--emulator", "--task-num", "0"]).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 2, stdout: "" });
    const { stderr } = error as { stderr: string };
    expect(stderr).toContain('pi: --task-num must be a positive integer, got "0"');
    expect(stderr).toContain("Usage: pi [options]");
  });
});
