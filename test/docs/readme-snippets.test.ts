// Keeps README.md honest: every ```ts block is typechecked against the
// packages' sources, and every block not marked `compile-only` is run against
// a Flame emulator (FLAME_ENDPOINT and ~/.flame/flame.yaml point at it).
// ```sh blocks are not run, but the npm scripts they name must exist.
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import * as node from "@flame-ts/node";
import { connect, SessionState } from "@flame-ts/node";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type CodeBlock, codeBlocks } from "./code-blocks.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const readmePath = join(root, "README.md");
const blocks = codeBlocks(readFileSync(readmePath, "utf8"));
// One folder per run, so two runs at once (a full `npm test` and this file
// alone, say) do not trip over each other. Ignored by git, tsc and biome.
const snippetDir = join(
  root,
  "test",
  "docs",
  ".snippets",
  `run-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
);

interface Snippet {
  name: string;
  file: string;
  block: CodeBlock;
  runnable: boolean;
}

const slug = (text: string) =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "")
    .slice(0, 40);

const snippets: Snippet[] = blocks
  .filter((b) => b.lang === "ts" || b.lang === "typescript")
  .map((block, i) => {
    const name = `${String(i + 1).padStart(2, "0")}-${slug(block.heading) || "top"}`;
    return {
      name,
      file: join(snippetDir, `${name}.ts`),
      block,
      runnable: !block.flags.includes("compile-only"),
    };
  });

// The topics the README must show with a snippet: a heading matching each.
const topics: [string, RegExp][] = [
  ["connect", /^Connect/],
  ["applications", /^Applications/],
  ["sessions", /^Sessions/],
  ["tasks and Observables", /^Tasks and Observables/],
  ["typed run/invoke", /^Typed/],
  ["bulk runs", /^Bulk runs/],
  ["watchSession", /watchSession/],
  ["resource requirements", /^Resource requirements/],
  ["TLS", /^TLS/],
  ["the Flame context file", /context file/],
  ["errors", /^Errors/],
  ["the emulator", /emulator/i],
  ["the gateway", /gateway/i],
];

describe("README.md snippets", () => {
  it("has a ts snippet for every topic", () => {
    expect(snippets.length).toBeGreaterThanOrEqual(topics.length);
    for (const [topic, heading] of topics) {
      const found = snippets.some((s) => s.block.headings.some((h) => heading.test(h)));
      expect(found, `no \`\`\`ts block under a heading for ${topic}`).toBe(true);
    }
    const imports = (pkg: string) => snippets.some((s) => s.block.code.includes(`"${pkg}"`));
    for (const pkg of [
      "@flame-ts/node",
      "@flame-ts/web",
      "@flame-ts/emulator",
      "@flame-ts/gateway",
    ]) {
      expect(imports(pkg), `no snippet imports ${pkg}`).toBe(true);
    }
  });

  it("names only npm scripts that exist", () => {
    const manifest = (dir: string) =>
      JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8"));
    // `-w` takes a workspace's folder or its package name.
    const workspaces = new Map<string, string>();
    for (const dir of manifest(".").workspaces as string[]) {
      workspaces.set(dir, dir);
      workspaces.set(manifest(dir).name, dir);
    }
    const scriptsOf = (workspace: string | undefined): Record<string, string> => {
      if (workspace === undefined) return manifest(".").scripts ?? {};
      const dir = workspaces.get(workspace.replace(/\/$/, ""));
      expect(dir, `no workspace "${workspace}"`).toBeTypeOf("string");
      return manifest(dir as string).scripts ?? {};
    };
    const shell = blocks.filter((b) => b.lang === "sh" || b.lang === "bash");
    expect(shell.length).toBeGreaterThan(0);
    const named: string[] = [];
    for (const block of shell) {
      for (const m of block.code.matchAll(
        /npm run ([\w:.-]+)((?:\s+(?:-w|--workspace)[= ]\S+)?)/g,
      )) {
        const script = m[1] as string;
        const workspace = /(?:-w|--workspace)[= ](\S+)/.exec(m[2] ?? "")?.[1];
        const scripts = scriptsOf(workspace);
        expect(scripts[script], `README.md:${block.line}: no script "${script}"`).toBeTypeOf(
          "string",
        );
        named.push(script);
      }
    }
    // The quick start's two commands are there, exactly.
    expect(blocks.some((b) => b.lang === "sh" && b.code.trim() === "npm ci && npm run pi")).toBe(
      true,
    );
    expect(blocks.some((b) => b.lang === "sh" && b.code.trim() === "npm ci && npm test")).toBe(
      true,
    );
    expect(named).toContain("docs");
  });

  it("maps flame-rs calls only to names that exist", () => {
    const markdown = readFileSync(readmePath, "utf8");
    const start = markdown.indexOf("## flame-rs → TypeScript");
    expect(start).toBeGreaterThan(0);
    const section = markdown.slice(start, markdown.indexOf("\n## ", start + 1));
    const rows = section.split("\n").filter((l) => l.startsWith("| `") || l.startsWith("| —"));
    expect(rows.length).toBeGreaterThan(30);
    const ours = rows.map((row) => row.split("|")[2] ?? "").join(" ");
    const missing: string[] = [];
    const checked = new Set<string>();
    for (const [, owner, name] of ours.matchAll(/\b(connection|session)\.(\w+)\(/g)) {
      const proto = owner === "connection" ? node.Connection.prototype : node.Session.prototype;
      checked.add(`${owner}.${name}`);
      if (typeof (proto as unknown as Record<string, unknown>)[name as string] !== "function") {
        missing.push(`${owner}.${name}`);
      }
    }
    for (const name of ["connect", "connectWithContext", "loadFlameContext", "isTerminal"]) {
      if (!new RegExp(`(?<![.\\w])${name}\\(`).test(ours)) continue;
      checked.add(name);
      if (typeof (node as Record<string, unknown>)[name] !== "function") missing.push(name);
    }
    expect(missing).toEqual([]);
    // The calls the flame-rs table must cover, by our name.
    for (const name of [
      "connection.registerApplication",
      "connection.unregisterApplication",
      "connection.updateApplication",
      "connection.getApplication",
      "connection.listApplication",
      "connection.createSession",
      "connection.openSession",
      "connection.getSession",
      "connection.listSession",
      "connection.closeSession",
      "connection.listExecutors",
      "session.createTask",
      "session.getTask",
      "session.listTasks",
      "session.watchTask",
      "session.runTask",
      "session.run",
      "session.invoke",
      "session.close",
      "connect",
      "loadFlameContext",
    ]) {
      expect(checked.has(name), `${name} is not in the flame-rs table`).toBe(true);
    }
    expect(typeof node.ResourceRequirement.parse).toBe("function");
  });

  it("links only to headings and files that exist", () => {
    const markdown = readFileSync(readmePath, "utf8");
    const outside = markdown.replace(/^(`{3,}|~{3,})[^\n]*\n[\s\S]*?^\1\s*$/gm, "");
    const anchors = new Set(
      [...outside.matchAll(/^#{1,6}\s+(.*)$/gm)].map((m) => githubSlug(m[1] as string)),
    );
    const broken: string[] = [];
    for (const m of outside.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1] as string;
      if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
      if (target.startsWith("#")) {
        if (!anchors.has(target.slice(1))) broken.push(target);
      } else if (!existsSync(join(root, target.split("#")[0] as string))) {
        broken.push(target);
      }
    }
    expect(broken).toEqual([]);
  });

  describe("typecheck and run", () => {
    let emulator: Emulator;
    let home: string;
    const saved = { HOME: process.env.HOME, FLAME_ENDPOINT: process.env.FLAME_ENDPOINT };

    beforeAll(async () => {
      rmSync(snippetDir, { recursive: true, force: true });
      mkdirSync(snippetDir, { recursive: true });
      for (const s of snippets) {
        // Map compiler positions back to README lines: the snippet starts on
        // the line after the fence.
        writeFileSync(s.file, s.block.code);
      }
      emulator = await startEmulator({ port: 0, host: "127.0.0.1" });
      // A Flame context file in a private HOME, so `connect()` with no URL
      // finds the emulator the way it would find a cluster.
      home = join(snippetDir, "home");
      mkdirSync(join(home, ".flame"), { recursive: true });
      writeFileSync(
        join(home, ".flame", "flame.yaml"),
        `current-context: emulator\ncontexts:\n  - name: emulator\n    cluster:\n      endpoint: "${emulator.url}"\n`,
      );
      process.env.HOME = home;
      process.env.FLAME_ENDPOINT = emulator.url;
    });

    afterAll(async () => {
      restoreEnv("HOME", saved.HOME);
      restoreEnv("FLAME_ENDPOINT", saved.FLAME_ENDPOINT);
      await emulator?.close();
      if (process.env.KEEP_SNIPPETS) return;
      rmSync(snippetDir, { recursive: true, force: true });
      try {
        rmdirSync(dirname(snippetDir)); // only when no other run is using it
      } catch {}
    });

    // A whole-program check: slow on a loaded machine, hence the generous bound.
    it("typechecks every ts snippet", { timeout: 120_000 }, () => {
      const diagnostics = typecheck(snippets);
      expect(diagnostics, diagnostics.join("\n")).toEqual([]);
    });

    for (const s of snippets.filter((x) => x.runnable)) {
      it(`runs ${s.name} (README.md:${s.block.line})`, { timeout: 30_000 }, async () => {
        // SHOW_SNIPPET_OUTPUT=1 prints what the snippets print, to compare with their comments.
        const log = vi.spyOn(console, "log");
        if (!process.env.SHOW_SNIPPET_OUTPUT) log.mockImplementation(() => {});
        try {
          await import(/* @vite-ignore */ pathToFileURL(s.file).href);
        } finally {
          log.mockRestore();
        }
        // A snippet cleans up after itself: no stream left open on the server.
        await until(() => emulator.stats().openStreams === 0, `${s.name} to close its streams`);
      });
    }

    it("leaves every session it opened closed", async () => {
      const connection = await connect(emulator.url);
      try {
        const open = (await connection.listSessions()).filter((x) => x.state === SessionState.Open);
        expect(open.map((x) => `${x.id} (${x.application})`)).toEqual([]);
      } finally {
        await connection.close();
      }
    });
  });
});

function typecheck(list: Snippet[]): string[] {
  const configFile = join(snippetDir, "tsconfig.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      // The root config resolves @flame-ts/* to their TypeScript sources.
      extends: relative(snippetDir, join(root, "tsconfig.json")),
      include: ["./*.ts"],
    }),
  );
  const parsed = ts.getParsedCommandLineOfConfigFile(configFile, undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    },
  });
  if (!parsed) throw new Error("could not read the generated tsconfig");
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
  const byFile = new Map(list.map((s) => [s.file, s]));
  expect(parsed.fileNames.length).toBe(list.length);
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file === undefined || byFile.has(d.file.fileName))
    .map((d) => {
      const text = ts.flattenDiagnosticMessageText(d.messageText, "\n");
      if (d.file === undefined || d.start === undefined) return `TS${d.code}: ${text}`;
      const s = byFile.get(d.file.fileName) as Snippet;
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      return `README.md:${s.block.line + 1 + line}:${character + 1} (${s.name}): TS${d.code}: ${text}`;
    });
}

/** The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens. */
function githubSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, "")
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

function restoreEnv(name: string, value: string | undefined) {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

/** Waits for `check` (bounded; a failure to get there is the error, not the time taken). */
async function until(check: () => boolean, what: string) {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// Fail early, with a clear message, if the README went missing.
if (!existsSync(readmePath)) throw new Error(`${readmePath} not found`);
