import type { IncomingHttpHeaders } from "node:http";

/** An HTTP/1.1 request head in the narrow form the gRPC-Web relay serves itself. */
export interface RequestHead {
  method: string;
  /** The request target: origin-form (`/path?query`). */
  target: string;
  /** Names in lower case; a repeated header's values joined with ", ". */
  headers: IncomingHttpHeaders;
  /** The body's length (Content-Length; 0 without one). */
  contentLength: number;
  /** The client asked to close the connection after this request. */
  close: boolean;
  /** Bytes of the head, up to and including the blank line. */
  size: number;
}

/**
 * What `readRequestHead` found: a head, not enough bytes yet, or a request
 * outside the narrow form (left to Node's HTTP/1.1 server, which serves or
 * refuses everything else exactly as without the relay).
 */
export type HeadReading =
  | { kind: "head"; head: RequestHead }
  | { kind: "incomplete" }
  | { kind: "other"; why: string };

/** Node's default limit on a request head (`--max-http-header-size`). */
export const maxHeadBytes = 16 * 1024;

const requestLine = /^([A-Z]+) (\/[\x21-\x7e]*) HTTP\/1\.1$/;
/** field-name ":" field-value, with the characters RFC 9110 allows (no controls but tab). */
const headerLine = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):([\t\x20-\x7e\x80-\xff]*)$/;
/** Optional whitespace around a value: spaces and tabs only. */
const outerWhitespace = /^[ \t]+|[ \t]+$/g;
/** Headers whose repetition changes what the request means; a repeat goes to Node's server. */
const single = new Set([
  "host",
  "content-length",
  "content-type",
  "authorization",
  "origin",
  "grpc-timeout",
  "grpc-encoding",
]);
/** Headers asking for what the relay does not do: chunked or unsized bodies, upgrades, 100-continue. */
const leftToNode = new Set(["transfer-encoding", "expect", "upgrade"]);

/**
 * Reads one request head from the start of `bytes` (latin1, as on the
 * wire). The relay serves only plain HTTP/1.1 requests with a sized body;
 * anything unusual, malformed or ambiguous is reported as "other" rather
 * than refused, so that llhttp (Node's parser) decides it. Being strict
 * here is what keeps the two parsers from ever reading one request two ways.
 */
export function readRequestHead(bytes: Buffer): HeadReading {
  const end = bytes.indexOf("\r\n\r\n", 0, "latin1");
  if (end < 0) {
    // A head ended with bare LFs never shows CRLF CRLF: without this it
    // would wait for the idle timeout instead of getting Node's 400 now.
    if (hasBareLineBreak(bytes)) return { kind: "other", why: "bare CR or LF" };
    return bytes.length > maxHeadBytes
      ? { kind: "other", why: "head too large" }
      : { kind: "incomplete" };
  }
  if (end + 4 > maxHeadBytes) return { kind: "other", why: "head too large" };
  const text = bytes.toString("latin1", 0, end);
  // CRLF only: a bare CR or LF is where parsers disagree.
  const lines = text.split("\r\n");
  const first = requestLine.exec(lines[0] as string);
  if (first === null) return { kind: "other", why: "request line" };
  const headers: IncomingHttpHeaders = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const field = headerLine.exec(line);
    if (field === null) return { kind: "other", why: "header line" };
    const name = (field[1] as string).toLowerCase();
    const value = (field[2] as string).replace(outerWhitespace, "");
    if (leftToNode.has(name)) return { kind: "other", why: name };
    const seen = headers[name];
    if (seen === undefined) {
      headers[name] = value;
    } else {
      if (single.has(name)) return { kind: "other", why: `repeated ${name}` };
      headers[name] = `${String(seen)}, ${value}`;
    }
  }
  const length = headers["content-length"];
  let contentLength = 0;
  if (length !== undefined) {
    if (!/^\d{1,15}$/.test(length)) return { kind: "other", why: "content-length" };
    contentLength = Number(length);
  }
  if (headers.host === undefined) return { kind: "other", why: "no host" };
  const connection = headers.connection;
  const close = connection !== undefined && /(^|,)\s*close\s*(,|$)/i.test(connection);
  return {
    kind: "head",
    head: {
      method: first[1] as string,
      target: first[2] as string,
      headers,
      contentLength,
      close,
      size: end + 4,
    },
  };
}

/** An LF not after a CR, or a CR not before an LF (a CR last may still get its LF). */
function hasBareLineBreak(bytes: Buffer): boolean {
  for (let at = bytes.indexOf(0x0a); at >= 0; at = bytes.indexOf(0x0a, at + 1)) {
    if (at === 0 || bytes[at - 1] !== 0x0d) return true;
  }
  for (let at = bytes.indexOf(0x0d); at >= 0; at = bytes.indexOf(0x0d, at + 1)) {
    if (at + 1 < bytes.length && bytes[at + 1] !== 0x0a) return true;
  }
  return false;
}

/** A head read before, with room for what a caller works out from it. */
export interface RememberedHead<Derived> {
  readonly head: RequestHead;
  /** Free for the caller; a repeat of the same head returns the same object. */
  derived: Derived | undefined;
}

export type RememberedReading<Derived> =
  | { kind: "head"; remembered: RememberedHead<Derived> }
  | Exclude<HeadReading, { kind: "head" }>;

/** Heads kept for repeats; cleared when full. */
const maxRemembered = 32;

/**
 * `readRequestHead`, answering repeats of a head from memory: a page's
 * calls of one method send the same head each time (the body's length
 * aside), so parsing it, and whatever the caller derives, is done once.
 */
export class RequestHeadReader<Derived> {
  readonly #remembered = new Map<string, RememberedHead<Derived>>();

  read(bytes: Buffer): RememberedReading<Derived> {
    const end = bytes.indexOf("\r\n\r\n", 0, "latin1");
    const key = end < 0 || end + 4 > maxHeadBytes ? undefined : bytes.toString("latin1", 0, end);
    if (key !== undefined) {
      const known = this.#remembered.get(key);
      if (known !== undefined) return { kind: "head", remembered: known };
    }
    const reading = readRequestHead(bytes);
    if (reading.kind !== "head") return reading;
    const remembered: RememberedHead<Derived> = { head: reading.head, derived: undefined };
    if (key !== undefined) {
      if (this.#remembered.size >= maxRemembered) this.#remembered.clear();
      this.#remembered.set(key, remembered);
    }
    return { kind: "head", remembered };
  }
}
