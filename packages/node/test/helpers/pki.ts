import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Certificates made for one test file with the openssl CLI, in a temp dir. */
export interface TestPki {
  dir: string;
  /** CA that signed the server and client certificates. */
  caFile: string;
  caPem: string;
  /** A second, unrelated CA. */
  otherCaFile: string;
  /** Server certificate for localhost and 127.0.0.1, signed by the CA. */
  serverCert: string;
  serverKey: string;
  /** Server certificate for example.test only, signed by the CA. */
  wrongNameCert: string;
  wrongNameKey: string;
  /** Client certificate for mutual TLS, signed by the CA. */
  clientCertFile: string;
  clientKeyFile: string;
  /** Remove the temp dir. */
  cleanup(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function makeCa(dir: string, name: string, cn: string): void {
  openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-subj",
    `/CN=${cn}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
}

function makeLeaf(dir: string, name: string, cn: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, [
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${cn}`,
  ]);
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    `${name}.pem`,
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
  ]);
}

/** Make a test CA, another CA, and server/client certificates (EC P-256, 2 days). */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "flame-pki-"));
  makeCa(dir, "ca", "Flame Test CA");
  makeCa(dir, "other-ca", "Some Other CA");
  const server = "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";
  makeLeaf(dir, "server", "localhost", `${server}subjectAltName=DNS:localhost,IP:127.0.0.1\n`);
  makeLeaf(dir, "wrong-name", "example.test", `${server}subjectAltName=DNS:example.test\n`);
  makeLeaf(
    dir,
    "client",
    "flame-client",
    "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
  );
  const read = (file: string) => readFileSync(join(dir, file), "utf8");
  return {
    dir,
    caFile: join(dir, "ca.pem"),
    caPem: read("ca.pem"),
    otherCaFile: join(dir, "other-ca.pem"),
    serverCert: read("server.pem"),
    serverKey: read("server.key"),
    wrongNameCert: read("wrong-name.pem"),
    wrongNameKey: read("wrong-name.key"),
    clientCertFile: join(dir, "client.pem"),
    clientKeyFile: join(dir, "client.key"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
