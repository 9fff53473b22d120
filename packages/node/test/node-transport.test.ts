import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Code, createClient } from "@connectrpc/connect";
import { FlameError } from "@flame-ts/core";
import { Frontend } from "@flame-ts/core/gen";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createNodeTransport, type NodeTransport } from "../src/node-transport.js";
import { makeTestPki, type TestPki } from "./helpers/pki.js";
import { rejectionOf } from "./helpers/rejection.js";
import { startTinyFrontend, type TinyFrontend } from "./helpers/tiny-frontend.js";

// Raw generated client over our transport, against a tiny HTTP/2 server: the
// transport alone, without core's Connection.

let pki: TestPki;
let plain: TinyFrontend;
let secure: TinyFrontend;
let wrongName: TinyFrontend;
let mutual: TinyFrontend;
const transports: NodeTransport[] = [];

async function transport(url: string, options: Parameters<typeof createNodeTransport>[1] = {}) {
  const t = await createNodeTransport(url, options);
  transports.push(t);
  return t;
}

async function configErrorOf(promise: Promise<unknown>): Promise<FlameError> {
  try {
    await promise;
  } catch (err) {
    expect(FlameError.is(err, "invalid-config")).toBe(true);
    return err as FlameError;
  }
  throw new Error("expected an invalid-config FlameError");
}

beforeAll(async () => {
  pki = makeTestPki();
  plain = await startTinyFrontend();
  secure = await startTinyFrontend({ tls: { cert: pki.serverCert, key: pki.serverKey } });
  wrongName = await startTinyFrontend({ tls: { cert: pki.wrongNameCert, key: pki.wrongNameKey } });
  mutual = await startTinyFrontend({
    tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.caPem, requireClientCert: true },
  });
});

afterAll(async () => {
  for (const t of transports) t.close();
  await Promise.all([plain?.close(), secure?.close(), wrongName?.close(), mutual?.close()]);
  pki?.cleanup();
});

describe("plaintext", () => {
  test("calls go over h2c and keep server error codes", async () => {
    const client = createClient(Frontend, (await transport(plain.url)).transport);
    const list = await client.listApplication({});
    expect(list.applications.map((a) => a.metadata?.name)).toEqual(["flmping"]);
    const err = await rejectionOf(client.getApplication({ name: "nope" }));
    expect(err.code).toBe(Code.NotFound);
  });

  test("close() ends the HTTP/2 session and later calls fail clearly", async () => {
    const before = plain.sessions.closed;
    const t = await transport(plain.url);
    const client = createClient(Frontend, t.transport);
    await client.getApplication({ name: "flmping" });
    expect(t.closed).toBe(false);
    t.close();
    t.close(); // idempotent
    expect(t.closed).toBe(true);
    await plain.closedSessions(before + 1);
    expect(plain.sessions.closed).toBeGreaterThan(before);
    const err = await rejectionOf(client.getApplication({ name: "flmping" }));
    expect(err.message).toMatch(/connection to http:\/\/127\.0\.0\.1:\d+ is closed/);
  });

  test("maxMessageBytes limits what the client sends", async () => {
    const client = createClient(
      Frontend,
      (await transport(plain.url, { maxMessageBytes: 64 })).transport,
    );
    const err = await rejectionOf(client.getApplication({ name: "x".repeat(100) }));
    expect(err.code).toBe(Code.ResourceExhausted);
  });

  test("TLS files are not read for http:// URLs", async () => {
    const t = await transport(plain.url, { caFile: join(pki.dir, "does-not-exist.pem") });
    await createClient(Frontend, t.transport).listApplication({});
  });
});

describe("TLS", () => {
  test("a CA file makes the server's certificate trusted (IP and DNS names)", async () => {
    for (const url of [secure.url, secure.url.replace("127.0.0.1", "localhost")]) {
      const client = createClient(
        Frontend,
        (await transport(url, { caFile: pki.caFile })).transport,
      );
      const app = await client.getApplication({ name: "flmping" });
      expect(app.metadata?.name).toBe("flmping");
    }
  });

  test("CA given as PEM text, string or bytes", async () => {
    for (const ca of [pki.caPem, new TextEncoder().encode(pki.caPem)]) {
      const client = createClient(Frontend, (await transport(secure.url, { ca })).transport);
      expect((await client.listApplication({})).applications).toHaveLength(1);
    }
  });

  test("another CA: Unavailable with a certificate message", async () => {
    const client = createClient(
      Frontend,
      (await transport(secure.url, { caFile: pki.otherCaFile })).transport,
    );
    const err = await rejectionOf(client.listApplication({}));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.message).toMatch(
      /TLS certificate problem with https:\/\/127\.0\.0\.1:\d+.*not trusted/,
    );
    expect(err.message).toContain("caFile");
  });

  test("no CA: the default trust store does not know the test CA", async () => {
    const client = createClient(Frontend, (await transport(secure.url)).transport);
    const err = await rejectionOf(client.listApplication({}));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.message).toMatch(/certificate/);
  });

  test("a certificate for another name fails", async () => {
    const client = createClient(
      Frontend,
      (await transport(wrongName.url, { caFile: pki.caFile })).transport,
    );
    const err = await rejectionOf(client.listApplication({}));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.message).toMatch(/does not match the host/);
    expect(err.message).toContain("127.0.0.1");
  });

  test("https:// to a plaintext server says it does not speak TLS", async () => {
    const url = plain.url.replace("http:", "https:");
    const client = createClient(Frontend, (await transport(url, { caFile: pki.caFile })).transport);
    const err = await rejectionOf(client.listApplication({}));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.message).toMatch(/does not seem to speak TLS/);
  });

  test("mutual TLS: a client certificate gets in, none is refused", async () => {
    const withCert = await transport(mutual.url, {
      caFile: pki.caFile,
      certFile: pki.clientCertFile,
      keyFile: pki.clientKeyFile,
    });
    expect(
      (await createClient(Frontend, withCert.transport).listApplication({})).applications,
    ).toHaveLength(1);
    const without = await transport(mutual.url, { caFile: pki.caFile });
    const err = await rejectionOf(createClient(Frontend, without.transport).listApplication({}));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.message).toMatch(/client certificate/);
  });

  test("close() ends a TLS session too", async () => {
    const before = secure.sessions.closed;
    const t = await transport(secure.url, { caFile: pki.caFile });
    await createClient(Frontend, t.transport).listApplication({});
    t.close();
    await secure.closedSessions(before + 1);
    expect(secure.sessions.closed).toBeGreaterThan(before);
  });
});

describe("configuration errors come before any call", () => {
  test("a missing CA file names the file and the OS error", async () => {
    const missing = join(pki.dir, "missing-ca.pem");
    const err = await configErrorOf(createNodeTransport(secure.url, { caFile: missing }));
    expect(err.message).toContain(missing);
    expect(err.message).toContain("ENOENT");
  });

  test("an unreadable CA file names the file, never its contents", async () => {
    const locked = join(pki.dir, "locked-ca.pem");
    writeFileSync(locked, pki.caPem);
    chmodSync(locked, 0o000);
    const isRoot = process.getuid?.() === 0;
    if (isRoot) {
      // root reads anything; a directory is unreadable as a file for everyone.
      const err = await configErrorOf(createNodeTransport(secure.url, { caFile: pki.dir }));
      expect(err.message).toContain(pki.dir);
      expect(err.message).toContain("EISDIR");
    } else {
      const err = await configErrorOf(createNodeTransport(secure.url, { caFile: locked }));
      expect(err.message).toContain(locked);
      expect(err.message).toContain("EACCES");
    }
  });

  test("a file that is not PEM is refused without echoing it", async () => {
    const notPem = join(pki.dir, "secret.txt");
    writeFileSync(notPem, "top-secret-words");
    const err = await configErrorOf(createNodeTransport(secure.url, { caFile: notPem }));
    expect(err.message).toContain(notPem);
    expect(err.message).toMatch(/not a PEM file/);
    expect(err.message).not.toContain("top-secret-words");
  });

  test("a certificate without its key is refused", async () => {
    const err = await configErrorOf(
      createNodeTransport(secure.url, { caFile: pki.caFile, certFile: pki.clientCertFile }),
    );
    expect(err.message).toMatch(/both a client certificate and its key/);
  });

  test.each([0, -1, 1.5, 2 ** 33])("maxMessageBytes %d is refused", async (maxMessageBytes) => {
    const err = await configErrorOf(createNodeTransport(plain.url, { maxMessageBytes }));
    expect(err.message).toMatch(/maxMessageBytes/);
  });

  test.each(["ftp://127.0.0.1:8080", "not a url"])("a bad URL %j", async (url) => {
    const err = await configErrorOf(createNodeTransport(url));
    expect(err.message).toContain(url);
  });
});
