// Proves that @flame-ts/core + @flame-ts/web bundle for the browser with no
// Node built-ins: Vite builds the pages with a plugin that fails on any
// `node:` or built-in import, and the emitted code is searched for leftovers.
import { describe, expect, it } from "vitest";
import { type BuiltPage, buildPage, gzipSizeOfJs } from "./harness.js";

function allJs(page: BuiltPage): string {
  return [...page.files]
    .filter(([name]) => name.endsWith(".js"))
    .map(([, code]) => String(code))
    .join("\n");
}

describe("browser bundle of core + web", () => {
  it("a Node built-in in a page fails the build (the guard works)", async () => {
    await expect(buildPage("node-builtin", { quiet: true })).rejects.toThrow(
      /Node built-in "node:fs"/,
    );
  });

  it("a minimal app builds with no Node built-ins and no browser stubs", async () => {
    const page = await buildPage("minimal");
    const code = allJs(page);
    // The connection code is really in there (not tree-shaken to nothing)...
    // (booleans, so that a failure does not print the whole bundle).
    expect(code.includes("application/grpc-web")).toBe(true);
    expect(code.includes("invalid Flame URL")).toBe(true);
    // ...and nothing Node-only came along with it.
    expect(/["'`]node:/.test(code)).toBe(false);
    expect(code.includes("__vite-browser-external")).toBe(false);
    expect(/\brequire\(/.test(code)).toBe(false);
    const gzip = gzipSizeOfJs(page.files);
    expect(gzip).toBeGreaterThan(0);
    console.log(`minimal core+web browser bundle: ${gzip} bytes gzipped (level 9)`);
  });

  it("a page on openChannel holds only the calls it makes", async () => {
    const standalone = allJs(await buildPage("standalone"));
    const whole = allJs(await buildPage("client"));
    // Words only the code of each part has (booleans: a failure does not
    // print the bundle). The page's calls and the watch machinery are in...
    const used = ["invalid Flame URL", "ListSession", "OpenSession", "WatchTask gave up"];
    for (const words of used) expect([words, standalone.includes(words)]).toEqual([words, true]);
    // ...while calls it never makes, and the Connect protocol, are not; the
    // whole-API page has them all, so the words are the right ones.
    const unused = [
      "an application name is required", // createSession / openOrCreateSession
      "the reply carried no task id", // createTask, run, runMany
      "no node in the answer", // getNode
      "Connect-Protocol-Version", // connect-web's Connect transport
    ];
    for (const words of unused) {
      expect([words, standalone.includes(words), whole.includes(words)]).toEqual([
        words,
        false,
        true,
      ]);
    }
    expect(gzipSizeOfJs(new Map([["page.js", standalone]]))).toBeLessThan(
      gzipSizeOfJs(new Map([["page.js", whole]])),
    );
  });

  it("the test page, which uses the whole client API, builds clean too", async () => {
    const code = allJs(await buildPage("client"));
    expect(/["'`]node:/.test(code)).toBe(false);
    expect(code.includes("__vite-browser-external")).toBe(false);
  });
});
