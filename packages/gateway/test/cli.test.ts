import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseCliArgs, UsageError } from "../src/cli-args.js";
import { clientFor } from "./clients.js";
import { eventually, type FakeFlame, startFakeFlame } from "./fake-flame.js";

const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
const cliPath = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const token = "cli-token-51b7e0a2";

let flame: FakeFlame;
const children: ChildProcess[] = [];

beforeAll(async () => {
  flame = await startFakeFlame();
});

afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
});

afterAll(async () => {
  await flame?.close();
});

interface Running {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function run(args: string[], env: Record<string, string> = {}) {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--conditions=@flame-ts/source", cliPath, ...args],
    { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, exit, stdout: () => stdout, stderr: () => stderr };
}

/** Starts the CLI and waits for its "listening" line. */
async function start(args: string[], env: Record<string, string> = {}): Promise<Running> {
  const proc = run(args, env);
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const match = /Flame gateway listening on (\S+) -> (\S+)/.exec(proc.stdout());
      if (match?.[1]) resolve(match[1]);
    };
    proc.child.stdout?.on("data", check);
    proc.exit.then((code) => reject(new Error(`CLI exited with ${code}: ${proc.stderr()}`)));
  });
  return { child: proc.child, url, stderr: proc.stderr, exit: proc.exit };
}

describe("flame-gateway", () => {
  it("forwards calls, checks the token from the environment and exits cleanly on SIGTERM", async () => {
    const gw = await start(
      [
        "--upstream",
        flame.url,
        "--port",
        "0",
        "--token-env",
        "GATEWAY_TOKEN",
        "--methods",
        "read-only",
        "--allow-origin",
        "https://dash.example.com",
        "--log-level",
        "debug",
      ],
      { GATEWAY_TOKEN: token },
    );
    const client = clientFor("grpc-web", gw.url);
    const app = await client.getApplication(
      { name: "flmping" },
      { headers: { authorization: `Bearer ${token}` } },
    );
    expect(app.metadata?.name).toBe("flmping");

    const before = flame.totalCalls();
    const refused = await client
      .getApplication({ name: "flmping" }, { headers: { authorization: "Bearer wrong" } })
      .catch((e: unknown) => ConnectError.from(e));
    expect(refused).toMatchObject({ code: Code.Unauthenticated });
    const denied = await client
      .createTask({ task: { sessionId: "s" } }, { headers: { authorization: `Bearer ${token}` } })
      .catch((e: unknown) => ConnectError.from(e));
    expect(denied).toMatchObject({ code: Code.PermissionDenied });
    expect(flame.totalCalls()).toBe(before);

    gw.child.kill("SIGTERM");
    expect(await gw.exit).toBe(0);
    expect(gw.stderr()).toContain("call refused");
    expect(gw.stderr()).not.toContain(token);
  });

  it("exits cleanly on SIGINT with a stream open, cancelling it upstream", async () => {
    const gw = await start(["--upstream", flame.url, "--port", "0"]);
    const cancelledBefore = flame.streamsCancelled;
    const ac = new AbortController();
    const stream = clientFor("grpc", gw.url).watchTask(
      { sessionId: "s", taskId: "9" },
      { signal: ac.signal },
    );
    const iterator = stream[Symbol.asyncIterator]();
    expect((await iterator.next()).done).toBe(false);
    gw.child.kill("SIGINT");
    expect(await gw.exit).toBe(0);
    await eventually(
      () => flame.streamsCancelled === cancelledBefore + 1,
      "the upstream stream to be cancelled",
    );
    ac.abort();
  });

  it("exits with 2 on a usage error and 1 on a bad upstream, saying why", async () => {
    // Started together: each is a fresh Node process.
    const missing = run(["--port", "0"]);
    const noToken = run(["--upstream", flame.url, "--token-env", "NOT_SET_ANYWHERE_42"]);
    const bad = run(["--upstream", "ftp://flame:8080", "--port", "0"]);
    expect(await missing.exit).toBe(2);
    expect(missing.stderr()).toContain("--upstream is required");
    expect(await noToken.exit).toBe(2);
    expect(noToken.stderr()).toContain("environment variable NOT_SET_ANYWHERE_42 is not set");
    expect(await bad.exit).toBe(1);
    expect(bad.stderr()).toContain("ftp:// is not supported");
  });
});

describe("argument parsing", () => {
  it("maps flags to gateway options", () => {
    const { options, logLevel } = parseCliArgs(
      [
        "--upstream",
        "https://flame:8080",
        "--host",
        "0.0.0.0",
        "--port",
        "9000",
        "--allow-origin",
        "https://a.example.com",
        "--allow-origin",
        "localhost",
        "--allow-origin-regex",
        "^https://.*\\.example\\.org$",
        "--methods",
        "GetTask, List*",
        "--max-message-bytes",
        "1048576",
        "--protocols",
        "grpc-web,connect",
        "--log-level",
        "warn",
      ],
      {},
    );
    expect(options).toMatchObject({
      upstream: "https://flame:8080",
      host: "0.0.0.0",
      port: 9000,
      methods: ["GetTask", "List*"],
      maxMessageBytes: 1048576,
      protocols: { grpc: false, grpcWeb: true, connect: true },
    });
    expect(options.allowedOrigins).toEqual([
      "https://a.example.com",
      "localhost",
      /^https:\/\/.*\.example\.org$/,
    ]);
    expect(options.bearerToken).toBeUndefined();
    expect(logLevel).toBe("warn");
  });

  it("maps the limit flags to options, and refuses a value that is not a whole number", () => {
    const argv = ["--upstream", "http://f:1"];
    const { options } = parseCliArgs(
      [
        ...argv,
        "--max-streams-per-connection",
        "10",
        "--idle-timeout-ms",
        "2000",
        "--headers-timeout-ms",
        "3000",
        "--request-timeout-ms",
        "4000",
        "--upstream-max-connections",
        "2",
        "--upstream-max-streams",
        "50",
      ],
      {},
    );
    expect(options).toMatchObject({
      maxStreamsPerConnection: 10,
      idleTimeoutMs: 2000,
      headersTimeoutMs: 3000,
      requestTimeoutMs: 4000,
      upstreamMaxConnections: 2,
      upstreamMaxStreams: 50,
    });
    expect(() => parseCliArgs([...argv, "--idle-timeout-ms", "soon"], {})).toThrow(
      /--idle-timeout-ms must be a whole number, got soon/,
    );
    expect(() => parseCliArgs([...argv, "--no-grpc-relay"], {})).toThrow(/no-grpc-relay/);
  });

  it("takes the log level from FLAME_LOG unless --log-level is given", () => {
    const argv = ["--upstream", "http://f:1"];
    expect(parseCliArgs(argv, { FLAME_LOG: "debug" }).logLevel).toBe("debug");
    expect(parseCliArgs([...argv, "--log-level", "error"], { FLAME_LOG: "debug" }).logLevel).toBe(
      "error",
    );
    expect(parseCliArgs(argv, {}).logLevel).toBe("info");
  });

  it("defaults to port 8081 on 127.0.0.1", () => {
    expect(parseCliArgs(["--upstream", "http://flame:8080"], {}).options).toMatchObject({
      port: 8081,
      host: "127.0.0.1",
    });
  });

  it("takes the token only from the named environment variable", () => {
    const { options } = parseCliArgs(["--upstream", "http://f:1", "--token-env", "TOK"], {
      TOK: "abc",
    });
    expect(options.bearerToken).toBe("abc");
    expect(() => parseCliArgs(["--upstream", "http://f:1", "--token", "abc"], {})).toThrow(
      UsageError,
    );
  });

  it.each([
    [["--upstream", "http://f:1", "--port", "eighty"], /--port must be a whole number/],
    [["--upstream", "http://f:1", "--tls-cert", "a.pem"], /--tls-cert and --tls-key go together/],
    [["--upstream", "http://f:1", "--protocols", "grpc,http3"], /unknown protocol http3/],
    [["--upstream", "http://f:1", "--log-level", "loud"], /--log-level must be/],
    [["--upstream", "http://f:1", "--allow-origin-regex", "("], /--allow-origin-regex/],
    [["--upstream", "http://f:1", "extra"], /positional/i],
  ])("rejects %j", (argv, message) => {
    expect(() => parseCliArgs(argv, {})).toThrow(message);
  });
});
