// Node-side helpers for browser tests: bundle a page with Vite for the
// browser, serve it on its own origin, and drive it in Debian's Chromium.

import { createServer, type Server } from "node:http";
import { builtinModules } from "node:module";
import type { AddressInfo } from "node:net";
import { dirname, extname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { type Browser, chromium, type Page } from "playwright-core";
import { build, defaultClientConditions, type Plugin, type Rolldown } from "vite";
import type { PageApi } from "./pages/client.js";

const here = dirname(fileURLToPath(import.meta.url));
export const pagesDir = resolve(here, "pages");

/** Chromium flags for a quiet, sandbox-free headless run in CI containers. */
export const chromiumArgs = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run",
  "--disable-dev-shm-usage",
];

/** Debian's Chromium; playwright-core never downloads a browser here. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: chromiumArgs,
  });
}

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/**
 * Fails the build on any import of a Node built-in, instead of letting Vite
 * quietly swap in its "__vite-browser-external" stub.
 */
export function noNodeBuiltins(): Plugin {
  return {
    name: "flame-test:no-node-builtins",
    enforce: "pre",
    resolveId(source, importer) {
      if (source.startsWith("node:") || builtins.has(source)) {
        this.error(`Node built-in "${source}" imported by ${importer ?? "an entry"}`);
      }
      return null;
    },
  };
}

export interface BuiltPage {
  /** Every emitted file by its file name: JS chunks and assets. */
  files: Map<string, string | Uint8Array>;
  /** The entry chunk's file name. */
  entry: string;
}

/**
 * Bundles `pages/<name>.ts` for the browser, as an app would: workspace
 * packages resolve to their TypeScript sources through "@flame-ts/source".
 */
export async function buildPage(name: string, { quiet = false } = {}): Promise<BuiltPage> {
  const result = await build({
    configFile: false,
    envDir: false,
    root: pagesDir,
    mode: "production",
    logLevel: quiet ? "silent" : "warn",
    plugins: [noNodeBuiltins()],
    resolve: { conditions: ["@flame-ts/source", ...defaultClientConditions] },
    build: {
      write: false,
      target: "es2022",
      minify: true,
      modulePreload: false,
      rolldownOptions: {
        input: { [name]: resolve(pagesDir, `${name}.ts`) },
        output: { entryFileNames: "[name].js", chunkFileNames: "[name]-[hash].js" },
      },
    },
  });
  const outputs = (Array.isArray(result) ? result : [result]) as Rolldown.RolldownOutput[];
  const files = new Map<string, string | Uint8Array>();
  let entry = "";
  for (const out of outputs) {
    for (const item of out.output) {
      if (item.type === "chunk") {
        files.set(item.fileName, item.code);
        if (item.isEntry) entry = item.fileName;
      } else {
        files.set(item.fileName, item.source);
      }
    }
  }
  if (!entry) throw new Error(`vite build of ${name} emitted no entry chunk`);
  return { files, entry };
}

/** Sum of the gzip sizes of the emitted JavaScript, in bytes. */
export function gzipSizeOfJs(files: Map<string, string | Uint8Array>): number {
  let total = 0;
  for (const [name, content] of files) {
    if (name.endsWith(".js")) total += gzipSync(content, { level: 9 }).length;
  }
  return total;
}

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

export interface StaticServer {
  /** e.g. "http://127.0.0.1:PORT" — a different origin from every Flame server. */
  origin: string;
  close(): Promise<void>;
}

/** Serves files from memory on 127.0.0.1:0. "/" is `index` (default: the page HTML). */
export async function serveFiles(files: Map<string, string | Uint8Array>): Promise<StaticServer> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const name = path === "/" ? "index.html" : decodeURIComponent(path.slice(1));
    const body = files.get(name);
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      "content-type": contentTypes[extname(name)] ?? "application/octet-stream",
      "cache-control": "no-store",
    });
    res.end(body);
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/** Serves a built page at "/" with an HTML shell that loads its entry chunk. */
export function servePage(page: BuiltPage): Promise<StaticServer> {
  const files = new Map(page.files);
  files.set(
    "index.html",
    `<!doctype html><html><head><meta charset="utf-8"><title>flame test</title></head>` +
      `<body><script type="module" src="/${page.entry}"></script></body></html>`,
  );
  return serveFiles(files);
}

/** Opens the page and waits until its module has put `window.flameTest` in place. */
export async function openPage(browser: Browser, origin: string): Promise<Page> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${origin}/`);
  await page
    .waitForFunction(() => "flameTest" in window)
    .catch((e: unknown) => {
      throw new Error(`page did not load: ${errors.join("; ") || String(e)}`);
    });
  return page;
}

/** Polls `probe` until it returns true (the page and servers are asynchronous). */
export async function until(
  probe: () => boolean | Promise<boolean>,
  what: string,
  limitMs = 20_000,
) {
  const deadline = Date.now() + limitMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

type AnyFn = (...args: never[]) => unknown;

/**
 * Calls `window.flameTest[name](...args)` in the page and returns its
 * (serialisable) result, typed from the page module's API.
 */
export function callPage<Api extends Record<string, AnyFn>, K extends keyof Api & string>(
  page: Page,
  name: K,
  ...args: Parameters<Api[K]>
): Promise<Awaited<ReturnType<Api[K]>>> {
  return page.evaluate(
    ({ name, args }) => {
      const api = (window as unknown as { flameTest: Record<string, (...a: unknown[]) => unknown> })
        .flameTest;
      const fn = api[name];
      if (!fn) throw new Error(`page has no scenario ${name}`);
      return fn(...args);
    },
    { name, args: args as unknown[] },
  ) as Promise<Awaited<ReturnType<Api[K]>>>;
}

/** pages/client.ts, built, served on an origin of its own and open in Chromium. */
export interface ClientPage {
  /** The page's origin, which the servers under test must allow (CORS). */
  origin: string;
  /** Runs one of the page's scenarios (see pages/client.ts). */
  call<K extends keyof PageApi & string>(
    name: K,
    ...args: Parameters<PageApi[K]>
  ): Promise<Awaited<ReturnType<PageApi[K]>>>;
  /** Closes the browser and the page's server. */
  close(): Promise<void>;
}

/** Builds and serves the client page, launches Chromium and opens it. */
export async function openClientPage(): Promise<ClientPage> {
  const [built, browser] = await Promise.all([buildPage("client"), launchChromium()]);
  const site = await servePage(built);
  const page = await openPage(browser, site.origin).catch(async (err: unknown) => {
    await browser.close();
    await site.close();
    throw err;
  });
  return {
    origin: site.origin,
    call: (name, ...args) => callPage<PageApi, typeof name>(page, name, ...args),
    close: async () => {
      await browser.close();
      await site.close();
    },
  };
}

/** A latch the Node side opens to let held emulator tasks finish. */
export class Gate {
  private release: () => void = () => {};
  private readonly opened = new Promise<void>((resolve) => {
    this.release = resolve;
  });

  wait(): Promise<void> {
    return this.opened;
  }

  open(): void {
    this.release();
  }
}
