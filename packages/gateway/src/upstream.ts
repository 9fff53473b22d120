import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { UpstreamPool } from "./upstream-pool.js";

/** Where the gateway forwards to, and how it trusts it. */
export interface UpstreamOptions {
  /** `http://host:port` (h2c) or `https://host:port` (TLS). */
  upstream: string;
  /** Path to a PEM file with the CA(s) that signed the upstream's certificate. */
  caFile?: string;
  /** PEM text or bytes of the CA(s); used instead of `caFile`. */
  ca?: string | Uint8Array;
  /** Largest message accepted from or sent to the upstream. */
  maxMessageBytes: number;
  /** HTTP/2 connections to the upstream at most. */
  maxConnections: number;
}

export interface Upstream {
  /** The upstream URL as given, without any credentials, for logs. */
  readonly displayUrl: string;
  readonly transport: Transport;
  readonly pool: UpstreamPool;
  close(): void;
}

/**
 * Checks the upstream URL and returns it parsed. The error names the
 * problem without echoing credentials a URL might carry.
 */
export function parseUpstreamUrl(upstream: unknown): URL {
  if (typeof upstream !== "string" || upstream.length === 0) {
    throw new TypeError(
      "upstream is required: the URL of Flame's session manager, e.g. http://flame:8080",
    );
  }
  let url: URL;
  try {
    url = new URL(upstream);
  } catch {
    const hint = upstream.includes("//") ? "" : `; did you mean http://${upstream}?`;
    throw new TypeError(
      `upstream must be an http:// or https:// URL such as http://flame:8080; could not parse ${JSON.stringify(upstream)}${hint}`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    // "flame:8080" parses as scheme "flame:"; say what was probably meant.
    const hint = upstream.includes("//") ? "" : `; did you mean http://${upstream}?`;
    throw new TypeError(
      `upstream must be an http:// (h2c) or https:// (TLS) URL; ${url.protocol}// is not supported${hint}`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw new TypeError("upstream must not contain credentials (user:password@)");
  }
  if (url.search !== "" || url.hash !== "") {
    throw new TypeError("upstream must not have a query or fragment");
  }
  return url;
}

/** Reads the CA (if any) and builds an HTTP/2 gRPC transport to the upstream. */
export async function openUpstream(options: UpstreamOptions): Promise<Upstream> {
  const url = parseUpstreamUrl(options.upstream);
  const ca = await loadCa(options);
  if (ca !== undefined && url.protocol !== "https:") {
    throw new TypeError("caFile/ca need an https:// upstream; the upstream is plain http://");
  }
  const baseUrl = url.href.replace(/\/+$/, "");
  const pool = new UpstreamPool(baseUrl, ca === undefined ? {} : { ca }, options.maxConnections);
  const transport = createGrpcTransport({
    baseUrl,
    sessionManager: pool,
    // Flame's answers are decoded here anyway; compressing them only costs CPU.
    acceptCompression: [],
    readMaxBytes: options.maxMessageBytes,
    writeMaxBytes: options.maxMessageBytes,
  });
  return {
    displayUrl: baseUrl,
    transport,
    pool,
    close: () => pool.abort(),
  };
}

async function loadCa(options: UpstreamOptions): Promise<string | undefined> {
  if (options.ca !== undefined) {
    const pem =
      typeof options.ca === "string" ? options.ca : Buffer.from(options.ca).toString("utf8");
    checkPem(pem, "ca");
    return pem;
  }
  if (options.caFile === undefined) return undefined;
  let pem: string;
  try {
    pem = await readFile(options.caFile, "utf8");
  } catch (e) {
    // Name the file and the reason; never the contents.
    const code = (e as NodeJS.ErrnoException).code ?? "read error";
    throw new Error(`cannot read caFile ${options.caFile}: ${code}`);
  }
  checkPem(pem, `caFile ${options.caFile}`);
  return pem;
}

/**
 * Node's TLS layer silently ignores a CA it cannot parse, which would turn a
 * wrong file into confusing handshake failures later. Fail at start-up
 * instead, without quoting the file.
 */
function checkPem(pem: string, what: string): void {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    throw new Error(`${what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch {
      throw new Error(
        `${what}: certificate ${i + 1} of ${blocks.length} is not a valid X.509 certificate`,
      );
    }
  });
}
