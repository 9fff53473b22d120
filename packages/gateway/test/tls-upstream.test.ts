import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { Frontend } from "@flame-ts/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway, startGateway } from "../src/index.js";
import { captureLogger } from "./capture-logger.js";
import { makeCertificates, type TestCertificates } from "./certificates.js";
import { clientFor } from "./clients.js";
import { type FakeFlame, startFakeFlame } from "./fake-flame.js";
import { rejection } from "./rejection.js";

let certs: TestCertificates;
let flame: FakeFlame;

beforeAll(async () => {
  certs = makeCertificates();
  flame = await startFakeFlame({ tls: { cert: certs.cert, key: certs.key } });
});

afterAll(async () => {
  await flame?.close();
  certs?.remove();
});

/** Lines of base64 inside the PEM: if any shows up, the CA leaked. */
function pemBody(pem: string): string[] {
  return pem.split("\n").filter((line) => line.length > 20 && !line.startsWith("-----"));
}

describe("a TLS upstream", () => {
  it("is reached over https with the CA from caFile", async () => {
    expect(flame.url.startsWith("https://localhost:")).toBe(true);
    const gateway = await startGateway({ upstream: flame.url, caFile: certs.caFile });
    try {
      for (const protocol of ["grpc-web", "connect", "grpc"] as const) {
        const app = await clientFor(protocol, gateway.url).getApplication({ name: "flmping" });
        expect(app.metadata?.name).toBe("flmping");
      }
      let n = 0;
      for await (const _ of clientFor("grpc-web", gateway.url).listTask({ sessionId: "s" })) n++;
      expect(n).toBe(3);
    } finally {
      await gateway.close();
    }
  });

  it("is reached with the CA given as PEM text", async () => {
    const gateway = await startGateway({ upstream: flame.url, ca: certs.caPem });
    try {
      const list = await clientFor("connect", gateway.url).listApplication({});
      expect(list.applications).toHaveLength(3);
    } finally {
      await gateway.close();
    }
  });

  it("is refused when the CA did not sign its certificate, without revealing the CA", async () => {
    const logger = captureLogger();
    const gateway = await startGateway({ upstream: flame.url, caFile: certs.otherCaFile, logger });
    const before = flame.totalCalls();
    try {
      for (const protocol of ["grpc-web", "connect"] as const) {
        const err = await rejection(
          clientFor(protocol, gateway.url).getApplication({ name: "flmping" }),
        );
        expect(err.code).toBe(Code.Unavailable);
        const otherPem = (await import("node:fs")).readFileSync(certs.otherCaFile, "utf8");
        for (const line of [...pemBody(otherPem), ...pemBody(certs.caPem)]) {
          expect(err.message).not.toContain(line);
          expect(logger.text()).not.toContain(line);
        }
      }
      expect(flame.totalCalls()).toBe(before);
      // The failure is logged, so an operator can see why.
      expect(logger.text()).toContain("upstream call failed");
    } finally {
      await gateway.close();
    }
  });
});

describe("a gateway served over TLS", () => {
  it("takes gRPC-Web over HTTP/2 and HTTP/1.1 on https", async () => {
    const gateway = await startGateway({
      upstream: flame.url,
      caFile: certs.caFile,
      tls: { cert: certs.cert, key: certs.key },
    });
    try {
      expect(gateway.url.startsWith("https://127.0.0.1:")).toBe(true);
      const baseUrl = gateway.url.replace("127.0.0.1", "localhost");
      for (const httpVersion of ["2", "1.1"] as const) {
        const transport = createGrpcWebTransport({
          baseUrl,
          httpVersion,
          nodeOptions: { ca: certs.caPem },
        } as Parameters<typeof createGrpcWebTransport>[0]);
        const app = await createClient(Frontend, transport).getApplication({ name: "flmping" });
        expect(app.metadata?.name).toBe("flmping");
      }
    } finally {
      await gateway.close();
    }
  });
});

describe("gRPC clients of a gateway served over TLS", () => {
  /** A gateway served over TLS, trusting `caFile` for the https upstream. */
  const startTlsGateway = (caFile: string) =>
    startGateway({ upstream: flame.url, caFile, tls: { cert: certs.cert, key: certs.key } });
  /** A gRPC client of the gateway over https (the certificate names localhost). */
  const grpcClientOverTls = (gateway: Gateway) =>
    createClient(
      Frontend,
      createGrpcTransport({
        baseUrl: gateway.url.replace("127.0.0.1", "localhost"),
        nodeOptions: { ca: certs.caPem },
      } as Parameters<typeof createGrpcTransport>[0]),
    );

  it("reach the https upstream, beside gRPC-Web over HTTP/2 on the same port", async () => {
    const gateway = await startTlsGateway(certs.caFile);
    try {
      const client = grpcClientOverTls(gateway);
      const app = await client.getApplication({ name: "flmping" });
      expect(app.metadata?.name).toBe("flmping");
      let n = 0;
      for await (const _ of client.listTask({ sessionId: "s" })) n++;
      expect(n).toBe(3);
      expect(gateway.stats().upstreamConnections).toBe(1);
      const web = createGrpcWebTransport({
        baseUrl: gateway.url.replace("127.0.0.1", "localhost"),
        httpVersion: "2",
        nodeOptions: { ca: certs.caPem },
      } as Parameters<typeof createGrpcWebTransport>[0]);
      const viaWeb = await createClient(Frontend, web).getApplication({ name: "flmping" });
      expect(viaWeb.metadata?.name).toBe("flmping");
    } finally {
      await gateway.close();
    }
  });

  it("checks the upstream's certificate: with the wrong CA the call fails Unavailable", async () => {
    const gateway = await startTlsGateway(certs.otherCaFile);
    try {
      const before = flame.totalCalls();
      const err = await rejection(grpcClientOverTls(gateway).getApplication({ name: "a" }));
      expect(err.code).toBe(Code.Unavailable);
      expect(flame.totalCalls()).toBe(before);
    } finally {
      await gateway.close();
    }
  });
});

describe("CA options", () => {
  it("are rejected for a plain http:// upstream", async () => {
    await expect(
      startGateway({ upstream: "http://127.0.0.1:1", caFile: certs.caFile }),
    ).rejects.toThrow(/https:\/\/ upstream/);
  });

  it("name a missing CA file and the reason", async () => {
    const missing = `${certs.dir}/nope.crt`;
    await expect(startGateway({ upstream: flame.url, caFile: missing })).rejects.toThrow(
      `cannot read caFile ${missing}: ENOENT`,
    );
  });

  it("reject a file that is not a certificate without quoting it", async () => {
    const keyFile = `${certs.dir}/server.key`;
    const err = await startGateway({ upstream: flame.url, caFile: keyFile }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain("holds no PEM certificate");
    for (const line of pemBody(certs.key)) expect((err as Error).message).not.toContain(line);
  });

  it("reject a corrupt certificate without quoting it", async () => {
    const corrupt = certs.caPem.replace(/\n[A-Za-z0-9+/]{20,}\n/, "\nnot base64 at all!!\n");
    const err = await startGateway({ upstream: flame.url, ca: corrupt }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(
      /ca: certificate 1 of 1 is not a valid X\.509 certificate/,
    );
    for (const line of pemBody(certs.caPem)) expect((err as Error).message).not.toContain(line);
  });
});
