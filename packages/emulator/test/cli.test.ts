import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Frontend } from "@flame-ts/core/gen";
import { afterEach, describe, expect, it } from "vitest";
import { parseCliArgs } from "../src/cli-args.js";

const cli = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const root = fileURLToPath(new URL("../../..", import.meta.url));

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});

const launch = (args: string[]) => {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--conditions=@flame-ts/source", cli, ...args],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  children.push(child);
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  const url = new Promise<string>((resolve, reject) => {
    const onData = () => {
      const match = /Flame emulator listening on (\S+)/.exec(output);
      if (match?.[1]) resolve(match[1]);
    };
    child.stdout?.on("data", onData);
    child.once("exit", () => reject(new Error(`exited before listening:\n${output}`)));
  });
  // Not every test awaits the URL; an early exit must not be an unhandled rejection.
  url.catch(() => {});
  return { child, url, exited, output: () => output };
};

describe("flame-emulator CLI", () => {
  it.each(["SIGTERM", "SIGINT"] as const)(
    "prints its URL, serves calls and exits 0 on %s",
    async (signal) => {
      const run = launch(["--port", "0", "--host", "127.0.0.1", "--storage", "sqlite"]);
      const url = await run.url;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const client = createClient(Frontend, createGrpcTransport({ baseUrl: url }));
      expect((await client.listApplication({})).applications).toHaveLength(3);
      // Answering as sqlite: its own wording for an unknown application.
      await expect(client.getApplication({ name: "ghost" })).rejects.toThrow(
        "application <ghost> not found",
      );
      run.child.kill(signal);
      expect(await run.exited).toBe(0);
    },
  );

  it("rejects an unknown option with exit code 2 and usage", async () => {
    const run = launch(["--bogus"]);
    expect(await run.exited).toBe(2);
    expect(run.output()).toContain("unknown option --bogus");
    expect(run.output()).toContain("Usage: flame-emulator");
  });
});

describe("parseCliArgs", () => {
  it("reads every option, in both --flag value and --flag=value forms", () => {
    expect(
      parseCliArgs([
        "--port=9000",
        "--host",
        "0.0.0.0",
        "--cors-origin",
        "https://a.example",
        "--cors-origin=https://b.example",
        "--pending-delay-ms",
        "5",
        "--running-delay-ms=7",
        "--storage",
        "sqlite",
        "--list-seed=42",
        "--max-sessions",
        "1000",
        "--fail-to-start",
        "broken",
        "--fail-to-start=worse",
        "--max-streams-per-connection",
        "50",
        "--headers-timeout-ms=1000",
        "--request-timeout-ms",
        "2000",
        "--keep-alive-timeout-ms=3000",
      ]),
    ).toEqual({
      help: false,
      options: {
        port: 9000,
        host: "0.0.0.0",
        corsOrigins: ["https://a.example", "https://b.example"],
        pendingDelayMs: 5,
        runningDelayMs: 7,
        storage: "sqlite",
        listSeed: 42,
        maxSessions: 1000,
        failToStart: { broken: {}, worse: {} },
        maxStreamsPerConnection: 50,
        headersTimeoutMs: 1000,
        requestTimeoutMs: 2000,
        keepAliveTimeoutMs: 3000,
      },
    });
  });

  it("refuses an unknown storage engine and a zero session limit", () => {
    expect(() => parseCliArgs(["--storage", "postgres"])).toThrow(
      "--storage needs one of sqlite, fs, none, got postgres",
    );
    expect(() => parseCliArgs(["--storage"])).toThrow("--storage needs one of");
    expect(() => parseCliArgs(["--max-sessions", "0"])).toThrow("--max-sessions");
    expect(() => parseCliArgs(["--fail-to-start"])).toThrow("--fail-to-start");
  });

  it("defaults to port 8080 like real Flame and refuses bad numbers", () => {
    expect(parseCliArgs([])).toEqual({ help: false, options: { port: 8080 } });
    expect(parseCliArgs(["--help"])).toEqual({ help: true });
    expect(() => parseCliArgs(["--port", "x"])).toThrow("--port");
    expect(() => parseCliArgs(["--running-delay-ms"])).toThrow("--running-delay-ms");
    expect(() => parseCliArgs(["--headers-timeout-ms", "-1"])).toThrow("--headers-timeout-ms");
  });
});
