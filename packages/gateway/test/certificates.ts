// Test certificates made with the openssl CLI: a throwaway CA and a server
// certificate it signs for localhost and 127.0.0.1.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestCertificates {
  dir: string;
  caFile: string;
  caPem: string;
  cert: string;
  key: string;
  /** A second CA that signed nothing here, to prove verification happens. */
  otherCaFile: string;
  remove(): void;
}

export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), "flame-gateway-tls-"));
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  for (const name of ["ca", "other-ca"]) {
    openssl(
      "req",
      "-x509",
      ...ecKey,
      "-keyout",
      at(`${name}.key`),
      "-out",
      at(`${name}.crt`),
      "-days",
      "2",
      "-subj",
      `/CN=Flame gateway test ${name}`,
    );
  }
  openssl(
    "req",
    ...ecKey,
    "-keyout",
    at("server.key"),
    "-out",
    at("server.csr"),
    "-subj",
    "/CN=localhost",
  );
  writeFileSync(at("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  openssl(
    "x509",
    "-req",
    "-in",
    at("server.csr"),
    "-CA",
    at("ca.crt"),
    "-CAkey",
    at("ca.key"),
    "-CAcreateserial",
    "-out",
    at("server.crt"),
    "-days",
    "2",
    "-extfile",
    at("san.ext"),
  );
  return {
    dir,
    caFile: at("ca.crt"),
    caPem: readFileSync(at("ca.crt"), "utf8"),
    cert: readFileSync(at("server.crt"), "utf8"),
    key: readFileSync(at("server.key"), "utf8"),
    otherCaFile: at("other-ca.crt"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
