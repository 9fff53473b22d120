// The gRPC-Web relay's request-head reader: it reads only the plainest
// HTTP/1.1 heads itself and reports anything else as "other" (for Node's
// server to decide), so that the relay and llhttp never read one request
// two ways.
import { describe, expect, it } from "vitest";
import { type HeadReading, maxHeadBytes, readRequestHead } from "../src/http1-request-head.js";

const latin1 = (text: string) => Buffer.from(text, "latin1");

const callHead = (...extra: string[]) => {
  const lines = [
    "POST /flame.v1.Frontend/GetTask HTTP/1.1",
    "Host: gateway:8080",
    "Content-Type: application/grpc-web+proto",
    "Content-Length: 12",
    ...extra,
  ];
  return `${lines.join("\r\n")}\r\n\r\n`;
};

function head(reading: HeadReading) {
  if (reading.kind !== "head") throw new Error(`expected a head, got ${JSON.stringify(reading)}`);
  return reading.head;
}

function whyOther(text: string): string {
  const reading = readRequestHead(latin1(text));
  if (reading.kind !== "other") throw new Error(`expected other, got ${reading.kind}`);
  return reading.why;
}

describe("readRequestHead", () => {
  it("waits for the rest of a head that has not ended", () => {
    const text = callHead();
    for (const cut of [0, 1, 20, text.length - 2, text.length - 1]) {
      expect(readRequestHead(latin1(text.slice(0, cut))).kind, `cut at ${cut}`).toBe("incomplete");
    }
  });

  it("reads a complete head: method, target, lower-case names, body length, its size", () => {
    const text = callHead("X-Request-Id: r-1", "Connection: keep-alive");
    const body = "twelve bytes";
    const h = head(readRequestHead(latin1(`${text}${body}POST / HTTP/1.1\r\n`)));
    expect(h.method).toBe("POST");
    expect(h.target).toBe("/flame.v1.Frontend/GetTask");
    expect(h.headers).toEqual({
      host: "gateway:8080",
      "content-type": "application/grpc-web+proto",
      "content-length": "12",
      "x-request-id": "r-1",
      connection: "keep-alive",
    });
    expect(h.contentLength).toBe(12);
    expect(h.close).toBe(false);
    // The body and what follows it are not the head's.
    expect(h.size).toBe(text.length);
  });

  it("reads a head without a body as length 0, and a query in the target", () => {
    const h = head(
      readRequestHead(latin1("OPTIONS /flame.v1.Frontend/GetTask?x=1 HTTP/1.1\r\nHost: g\r\n\r\n")),
    );
    expect(h.method).toBe("OPTIONS");
    expect(h.target).toBe("/flame.v1.Frontend/GetTask?x=1");
    expect(h.contentLength).toBe(0);
  });

  it("trims spaces and tabs around values, and keeps those inside", () => {
    const h = head(readRequestHead(latin1(callHead("X-A: \t a  b \t ", "X-B:c", "X-Empty:   "))));
    expect(h.headers["x-a"]).toBe("a  b");
    expect(h.headers["x-b"]).toBe("c");
    expect(h.headers["x-empty"]).toBe("");
  });

  it("keeps bytes above 0x7f in values as latin1, as Node does", () => {
    const h = head(readRequestHead(latin1(callHead("X-Name: caf\xe9"))));
    expect(h.headers["x-name"]).toBe("caf\xe9");
  });

  it("joins a repeated header that may repeat, in order, with a comma", () => {
    const h = head(readRequestHead(latin1(callHead("X-Tag: one", "x-tag: two", "X-TAG: three"))));
    expect(h.headers["x-tag"]).toBe("one, two, three");
  });

  it("sees Connection: close in any case and among other options, and not in look-alikes", () => {
    const closes = (value: string) =>
      head(readRequestHead(latin1(callHead(`Connection: ${value}`)))).close;
    expect(closes("close")).toBe(true);
    expect(closes("Close")).toBe(true);
    expect(closes("keep-alive, close")).toBe(true);
    expect(closes("close ,te")).toBe(true);
    expect(closes("closed")).toBe(false);
    expect(closes("keep-alive")).toBe(false);
    // Repeated Connection headers are joined, so a later "close" still counts.
    expect(
      head(readRequestHead(latin1(callHead("Connection: keep-alive", "Connection: close")))).close,
    ).toBe(true);
  });

  it("leaves every other request line to Node", () => {
    const rest = "\r\nHost: g\r\n\r\n";
    expect(whyOther(`POST /x HTTP/1.0${rest}`)).toBe("request line");
    expect(whyOther(`POST http://g/x HTTP/1.1${rest}`)).toBe("request line");
    expect(whyOther(`post /x HTTP/1.1${rest}`)).toBe("request line");
    expect(whyOther(`POST  /x HTTP/1.1${rest}`)).toBe("request line");
    expect(whyOther(`POST /a b HTTP/1.1${rest}`)).toBe("request line");
    expect(whyOther(`POST * HTTP/1.1${rest}`)).toBe("request line");
  });

  it("leaves malformed header lines to Node", () => {
    expect(whyOther(callHead("X-A: b\x01c"))).toBe("header line");
    expect(whyOther(callHead("X-A: b\x7fc"))).toBe("header line");
    expect(whyOther(callHead("X-A : b"))).toBe("header line");
    expect(whyOther(callHead("X A: b"))).toBe("header line");
    expect(whyOther(callHead("NoColon"))).toBe("header line");
    // Obsolete line folding.
    expect(whyOther(callHead("X-A: b", " folded"))).toBe("header line");
    // A bare CR or LF inside a head that does end in CRLF CRLF.
    expect(whyOther(callHead("X-A: b\rX-B: c"))).toBe("header line");
    expect(whyOther(callHead("X-A: b\nX-B: c"))).toBe("header line");
  });

  it("leaves heads with bare line ends to Node at once, not when they never end", () => {
    // No CRLF CRLF will ever come: these must not wait as incomplete.
    expect(whyOther("POST /x HTTP/1.1\nHost: g\nContent-Length: 0\n\n")).toBe("bare CR or LF");
    expect(whyOther("POST /x HTTP/1.1\r\nHost: g\nContent-Length: 0\r\n")).toBe("bare CR or LF");
    expect(whyOther("POST /x HTTP/1.1\r\nHost: g\rX")).toBe("bare CR or LF");
    // A CR last may be followed by its LF: still incomplete.
    expect(readRequestHead(latin1("POST /x HTTP/1.1\r\nHost: g\r")).kind).toBe("incomplete");
  });

  it("leaves bodies and protocols it does not serve to Node", () => {
    expect(whyOther(callHead("Transfer-Encoding: chunked"))).toBe("transfer-encoding");
    expect(whyOther(callHead("Expect: 100-continue"))).toBe("expect");
    expect(whyOther(callHead("Upgrade: websocket"))).toBe("upgrade");
  });

  it("leaves repeats of headers that must be single to Node, even with equal values", () => {
    expect(whyOther(callHead("Content-Length: 12"))).toBe("repeated content-length");
    expect(whyOther(callHead("Content-Length: 13"))).toBe("repeated content-length");
    expect(whyOther(callHead("Host: other"))).toBe("repeated host");
    expect(whyOther(callHead("content-type: application/grpc-web"))).toBe("repeated content-type");
    for (const name of ["authorization", "origin", "grpc-timeout", "grpc-encoding"]) {
      expect(whyOther(callHead(`${name}: a`, `${name}: b`))).toBe(`repeated ${name}`);
    }
  });

  it("leaves a Content-Length that is not plain digits to Node", () => {
    const withLength = (value: string) =>
      `POST /x HTTP/1.1\r\nHost: g\r\nContent-Length: ${value}\r\n\r\n`;
    for (const value of ["+12", "-1", "12, 12", "0x10", "1e3", "", "1234567890123456"]) {
      expect(whyOther(withLength(value)), value).toBe("content-length");
    }
    expect(head(readRequestHead(latin1(withLength("007")))).contentLength).toBe(7);
  });

  it("leaves a head without Host to Node", () => {
    expect(whyOther("POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n")).toBe("no host");
  });

  it("reads heads up to Node's 16 KiB limit and leaves larger ones to Node", () => {
    const base = "GET / HTTP/1.1\r\nHost: g\r\nX-Pad: \r\n\r\n";
    const sized = (size: number) =>
      base.replace("X-Pad: ", `X-Pad: ${"p".repeat(size - base.length)}`);
    const atLimit = sized(maxHeadBytes);
    expect(atLimit.length).toBe(maxHeadBytes);
    expect(head(readRequestHead(latin1(atLimit))).size).toBe(maxHeadBytes);
    expect(whyOther(sized(maxHeadBytes + 1))).toBe("head too large");
    // Unfinished, but already more than any head may be.
    const unfinished = `GET / HTTP/1.1\r\nX-Pad: ${"p".repeat(maxHeadBytes)}`;
    expect(whyOther(unfinished)).toBe("head too large");
    expect(readRequestHead(latin1(unfinished.slice(0, maxHeadBytes))).kind).toBe("incomplete");
  });
});
