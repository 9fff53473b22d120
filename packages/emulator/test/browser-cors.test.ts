// Real Chromium calling the emulator from a page on another origin: the
// browser itself enforces CORS, so this proves the grants (and the refusal)
// work for what a Vite dev server would do.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Emulator, startEmulator } from "../src/index.js";

let browser: Browser;
let site: Server;
let siteOrigin: string;
let page: Page;
let open: Emulator;
let closed: Emulator;

beforeAll(async () => {
  site = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><title>dev server</title>");
  });
  await new Promise<void>((resolve) => site.listen(0, "127.0.0.1", resolve));
  // "localhost" so the default allowlist's localhost rule is what grants it.
  siteOrigin = `http://localhost:${(site.address() as AddressInfo).port}`;
  [open, closed, browser] = await Promise.all([
    startEmulator(),
    startEmulator({ corsOrigins: ["https://only.example.com"] }),
    chromium.launch({
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--disable-dev-shm-usage",
      ],
    }),
  ]);
  page = await browser.newPage();
  await page.goto(siteOrigin);
});

afterAll(async () => {
  await browser?.close();
  await open?.close();
  await closed?.close();
  await new Promise((resolve) => site?.close(resolve));
});

/** In the page: a Connect-protocol JSON call and a gRPC-Web binary call. */
const callFromPage = (baseUrl: string) =>
  page.evaluate(async (url) => {
    const outcome = async (run: () => Promise<string>) => {
      try {
        return await run();
      } catch (error) {
        return `blocked: ${(error as Error).name}`;
      }
    };
    const connect = await outcome(async () => {
      const res = await fetch(`${url}/flame.v1.Frontend/ListApplication`, {
        method: "POST",
        headers: { "content-type": "application/json", "connect-protocol-version": "1" },
        body: "{}",
      });
      const body = (await res.json()) as { applications?: { metadata?: { name?: string } }[] };
      return (body.applications ?? []).map((a) => a.metadata?.name).join(",");
    });
    const grpcWeb = await outcome(async () => {
      const res = await fetch(`${url}/flame.v1.Frontend/GetApplication`, {
        method: "POST",
        headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
        // One uncompressed frame holding GetApplicationRequest { name: "nope" }.
        body: new Uint8Array([0, 0, 0, 0, 6, 0x0a, 4, 0x6e, 0x6f, 0x70, 0x65]),
      });
      const bytes = new Uint8Array(await res.arrayBuffer());
      // The trailers frame (flag 0x80) carries grpc-status: NOT_FOUND is 5.
      const text = new TextDecoder().decode(bytes.subarray(5));
      return /grpc-status:\s*5/.test(text) ? "not-found" : `unexpected: ${text}`;
    });
    return { connect, grpcWeb };
  }, baseUrl);

describe("browser CORS", () => {
  it("a localhost dev-server page reaches the emulator by Connect and gRPC-Web", async () => {
    expect(new URL(open.url).origin).not.toBe(siteOrigin);
    const result = await callFromPage(open.url);
    expect(result.connect.split(",").sort()).toEqual(["flmexec", "flmping", "flmrun"]);
    expect(result.grpcWeb).toBe("not-found");
  });

  it("a page from an origin outside the allowlist is blocked by the browser", async () => {
    const result = await callFromPage(closed.url);
    expect(result).toEqual({ connect: "blocked: TypeError", grpcWeb: "blocked: TypeError" });
    // The preflight was refused, so the calls never reached the service.
    expect(closed.stats().calls).toEqual({});
  });
});
