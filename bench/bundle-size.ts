// The bundle figure: minified and gzipped size of a Vite production build of a
// minimal list + watch page on @flame-ts/web (standalone functions), beside
// the same calls on a bare connect-web client, and the same page written with
// connect() and methods (pages/). Sizes are of all emitted JavaScript.
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build, type Rolldown } from "vite";
import type { BenchCase } from "./context.js";
import { fmt, met, ratio } from "./table.js";

const pagesDir = resolve(dirname(fileURLToPath(import.meta.url)), "pages");

interface Size {
  minified: number;
  gzip: number;
}

async function buildSize(page: string): Promise<Size> {
  const result = await build({
    configFile: false,
    envDir: false,
    root: pagesDir,
    mode: "production",
    logLevel: "silent",
    resolve: { conditions: ["@flame-ts/source", "browser", "import", "module", "default"] },
    build: {
      write: false,
      target: "es2022",
      minify: true,
      modulePreload: false,
      rolldownOptions: { input: { [page]: resolve(pagesDir, `${page}.ts`) } },
    },
  });
  const outputs = (Array.isArray(result) ? result : [result]) as Rolldown.RolldownOutput[];
  const size: Size = { minified: 0, gzip: 0 };
  for (const out of outputs) {
    for (const item of out.output) {
      if (item.type !== "chunk") continue;
      size.minified += Buffer.byteLength(item.code);
      size.gzip += gzipSync(item.code, { level: 9 }).length;
    }
  }
  if (size.minified === 0) throw new Error(`vite build of ${page} emitted no JavaScript`);
  return size;
}

export const bundleSize: BenchCase = {
  name: "bundle-size",
  async run(ctx) {
    const ours = await buildSize("ours");
    const bare = await buildSize("baseline");
    const methods = await buildSize("connection");
    ctx.log(
      `ours ${ours.minified} B min / ${ours.gzip} B gz; bare ${bare.minified} / ${bare.gzip}; ` +
        `with connect() ${methods.minified} / ${methods.gzip}`,
    );
    return [
      {
        case: "bundle",
        figure: "list + watch page (openChannel + functions), gzip (level 9)",
        ours: fmt.kb(ours.gzip),
        baseline: `${fmt.kb(bare.gzip)} (bare connect-web)`,
        ratio: ratio(ours.gzip, bare.gzip),
        goal: "<= 1.30x",
        met: met(ours.gzip / bare.gzip, 1.3, "<="),
      },
      {
        case: "bundle",
        figure: "the same page on connect() and methods, gzip",
        ours: fmt.kb(methods.gzip),
        baseline: `${fmt.kb(bare.gzip)} (bare connect-web)`,
        ratio: ratio(methods.gzip, bare.gzip),
        goal: "",
        met: "",
      },
      {
        case: "bundle",
        figure: "list + watch page, minified",
        ours: fmt.kb(ours.minified),
        baseline: `${fmt.kb(bare.minified)} (bare connect-web)`,
        ratio: ratio(ours.minified, bare.minified),
        goal: "",
        met: "",
      },
    ];
  },
};
