import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import {
  type Connection,
  codecs,
  connect,
  connectWithContext,
  FlameError,
  loadApplicationSpec,
  loadFlameContext,
  Shim,
} from "@flame-ts/node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { makeTestPki, type TestPki } from "../../packages/node/test/helpers/pki.js";

// @flame-ts/node against the emulator over real sockets: plaintext h2c and
// TLS, the context file, and application specs.

let pki: TestPki;
let plain: Emulator;
let secure: Emulator;
let wrongName: Emulator;
let dir: string;
const connections: Connection[] = [];

async function open(url?: string, options?: Parameters<typeof connect>[1]) {
  const connection = await connect(url, options);
  connections.push(connection);
  return connection;
}

async function flameErrorOf(promise: Promise<unknown>, kind: string): Promise<FlameError> {
  try {
    await promise;
  } catch (err) {
    expect(FlameError.is(err)).toBe(true);
    expect((err as FlameError).kind).toBe(kind);
    return err as FlameError;
  }
  throw new Error(`expected a FlameError of kind ${kind}`);
}

function calls(emulator: Emulator): number {
  return Object.values(emulator.stats().calls).reduce((a, b) => a + b, 0);
}

beforeAll(async () => {
  pki = makeTestPki();
  dir = mkdtempSync(join(tmpdir(), "flame-node-"));
  plain = await startEmulator({ port: 0 });
  secure = await startEmulator({ port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } });
  wrongName = await startEmulator({
    port: 0,
    tls: { cert: pki.wrongNameCert, key: pki.wrongNameKey },
  });
});

afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
  await Promise.all([plain?.close(), secure?.close(), wrongName?.close()]);
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("plaintext HTTP/2", () => {
  test("lists the built-in applications and runs a flmping task", async () => {
    const connection = await open(plain.url);
    const names = (await connection.listApplications()).map((a) => a.name);
    expect(names).toEqual(expect.arrayContaining(["flmexec", "flmping", "flmrun"]));
    expect((await connection.getApplication("flmping")).name).toBe("flmping");

    const session = await connection.createSession({
      application: "flmping",
      codec: codecs.json<{ duration: number }, { message: string }>(),
    });
    const output = await session.invoke({ duration: 0 });
    expect(output.message).toMatch(/^Completed on <.+> in <\d+> milliseconds with <0> memory$/);
    await session.close();
    expect(plain.stats().calls.CreateTask).toBeGreaterThanOrEqual(1);
  });

  test("server errors keep their kind", async () => {
    const connection = await open(plain.url);
    const err = await flameErrorOf(connection.getApplication("no-such-app"), "not-found");
    expect(err.method).toBe("GetApplication");
  });

  test("close() runs the caller's onClose and later calls fail clearly", async () => {
    let hookRan = 0;
    const connection = await open(plain.url, { onClose: () => void hookRan++ });
    await connection.listApplications();
    await connection.close();
    await connection.close();
    expect(hookRan).toBe(1);
    expect(connection.closed).toBe(true);
    const err = await flameErrorOf(connection.listApplications(), "cancelled");
    expect(err.message).toMatch(/closed/);
  });

  test("core options pass through: timeoutMs ends a call the server never answers", async () => {
    // An HTTP/2 server that accepts every stream and never responds.
    const silent = http2.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      const connection = await open(`http://127.0.0.1:${port}`, { timeoutMs: 100, retry: false });
      await flameErrorOf(connection.listApplications(), "deadline-exceeded");
      await connection.close();
    } finally {
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});

describe("TLS", () => {
  test("connects with the CA file that signed the server's certificate", async () => {
    const connection = await open(secure.url, { caFile: pki.caFile });
    expect((await connection.listApplications()).map((a) => a.name)).toContain("flmping");
    const viaName = await open(secure.url.replace("127.0.0.1", "localhost"), { ca: pki.caPem });
    expect((await viaName.getApplication("flmrun")).name).toBe("flmrun");
  });

  test("a CA file of another CA fails as unavailable with a certificate message", async () => {
    const connection = await open(secure.url, { caFile: pki.otherCaFile, retry: false });
    const err = await flameErrorOf(connection.listApplications(), "unavailable");
    expect(err.message).toMatch(/TLS certificate problem/);
    expect(err.message).toMatch(/not trusted/);
  });

  test("a certificate for example.test fails when connecting to 127.0.0.1 and localhost", async () => {
    for (const url of [wrongName.url, wrongName.url.replace("127.0.0.1", "localhost")]) {
      const connection = await open(url, { caFile: pki.caFile, retry: false });
      const err = await flameErrorOf(connection.listApplications(), "unavailable");
      expect(err.message).toMatch(/does not match the host/);
    }
    expect(calls(wrongName)).toBe(0);
  });

  test("an unreadable CA file is invalid-config before any call", async () => {
    const before = calls(secure);
    const missing = join(dir, "no-such-ca.pem");
    const err = await flameErrorOf(connect(secure.url, { caFile: missing }), "invalid-config");
    expect(err.message).toContain(missing);
    expect(err.message).toContain("ENOENT");
    expect(calls(secure)).toBe(before);
  });
});

describe("bad URLs", () => {
  test.each(["ftp://127.0.0.1:8080", "not a url", "http://"])(
    "%j is invalid-config",
    async (url) => {
      const err = await flameErrorOf(connect(url), "invalid-config");
      expect(err.message).toContain(url === "http://" ? "http://" : url);
    },
  );
});

describe("Flame context", () => {
  function writeContextFile(path: string): void {
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(
      path,
      [
        "current-context: secure",
        "contexts:",
        "  - name: plain",
        "    cluster:",
        `      endpoint: "${plain.url}"`,
        "  - name: secure",
        "    cluster:",
        `      endpoint: "${secure.url}"`,
        "      tls:",
        `        ca_file: "${pki.caFile}"`,
        "",
      ].join("\n"),
    );
  }

  test("connect() with no URL reads $HOME/.flame/flame.yaml and makes a real call", async () => {
    const home = join(dir, "home");
    writeContextFile(join(home, ".flame", "flame.yaml"));
    const before = calls(secure);
    const connection = await open(undefined, { env: { HOME: home } });
    expect((await connection.listApplications()).map((a) => a.name)).toContain("flmping");
    expect(calls(secure)).toBe(before + 1);
  });

  test("connect() honours HOME from process.env when no env is given", async () => {
    const home = join(dir, "home-process");
    writeContextFile(join(home, ".flame", "flame.yaml"));
    const saved = { HOME: process.env.HOME, FLAME_ENDPOINT: process.env.FLAME_ENDPOINT };
    process.env.HOME = home;
    delete process.env.FLAME_ENDPOINT;
    try {
      const connection = await open(undefined, { contextName: "plain" });
      expect((await connection.getApplication("flmexec")).name).toBe("flmexec");
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });

  test("connectWithContext with a given file, context and FLAME_ENDPOINT override", async () => {
    const path = join(dir, "ctx", "flame.yaml");
    writeContextFile(path);
    const plainCtx = loadFlameContext({ path, contextName: "plain", env: {} });
    const c1 = await connectWithContext(plainCtx);
    connections.push(c1);
    expect((await c1.listApplications()).length).toBeGreaterThanOrEqual(3);

    // FLAME_ENDPOINT moves the secure context to the plaintext emulator.
    const c2 = await connectWithContext(undefined, {
      contextFile: path,
      env: { FLAME_ENDPOINT: plain.url },
    });
    connections.push(c2);
    const before = calls(plain);
    await c2.listApplications();
    expect(calls(plain)).toBe(before + 1);
  });

  test("FLAME_CA_FILE overrides the context's CA (here: with a wrong one)", async () => {
    const path = join(dir, "ctx2", "flame.yaml");
    writeContextFile(path);
    const connection = await open(undefined, {
      contextFile: path,
      env: { FLAME_CA_FILE: pki.otherCaFile },
      retry: false,
    });
    await flameErrorOf(connection.listApplications(), "unavailable");
  });

  test("a missing context file is invalid-config naming the file", async () => {
    const home = join(dir, "nobody");
    const err = await flameErrorOf(connect(undefined, { env: { HOME: home } }), "invalid-config");
    expect(err.message).toContain(join(home, ".flame", "flame.yaml"));
  });
});

describe("application specs", () => {
  test("a YAML spec round-trips through registerApplication and getApplication", async () => {
    const path = join(dir, "my-app.yaml");
    writeFileSync(
      path,
      `metadata:
  name: yaml-app
spec:
  shim: host
  description: An application from YAML
  labels: [batch, test]
  image: registry.example/yaml-app:1
  command: /usr/bin/yaml-app
  arguments: [--verbose, "2"]
  environments:
    - name: MODE
      value: fast
    - name: LEVEL
      value: 3
  working_directory: /opt/yaml-app
  max_instances: 10
  delay_release: 60
  schema:
    input: '{"type":"object"}'
    output:
      type: string
  url: file:///opt/yaml-app
  installer: pip
`,
    );
    const spec = loadApplicationSpec(path);
    const connection = await open(plain.url);
    await connection.registerApplication(spec.name, spec.attributes);
    const app = await connection.getApplication("yaml-app");
    expect(app).toMatchObject({
      name: "yaml-app",
      shim: Shim.Host,
      description: "An application from YAML",
      labels: ["batch", "test"],
      image: "registry.example/yaml-app:1",
      command: "/usr/bin/yaml-app",
      arguments: ["--verbose", "2"],
      environments: { MODE: "fast", LEVEL: "3" },
      workingDirectory: "/opt/yaml-app",
      maxInstances: 10,
      delayRelease: 60,
      schema: { input: '{"type":"object"}', output: '{"type":"string"}' },
      url: "file:///opt/yaml-app",
      installer: "pip",
    });
    await connection.unregisterApplication("yaml-app");
  });
});
