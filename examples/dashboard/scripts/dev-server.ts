import { fileURLToPath } from "node:url";
import type { Emulator } from "@flame-ts/emulator";
import { createServer, type ViteDevServer } from "vite";
import { startDemoEmulator } from "./demo-emulator.js";

export interface DevOptions {
  /** Vite's port; default 5173 (the next free one if taken), 0 for any. */
  port?: number;
  /** The emulator's port; default 0 (any free one). */
  emulatorPort?: number;
  /** Print Vite's banner and URLs. Default true. */
  verbose?: boolean;
}

export interface Dev {
  /** The dashboard, e.g. "http://127.0.0.1:5173/". */
  url: string;
  emulator: Emulator;
  vite: ViteDevServer;
  close(): Promise<void>;
}

const root = fileURLToPath(new URL("..", import.meta.url));

/** The demo emulator, then Vite's dev server with the app pointed at it. */
export async function startDev(options: DevOptions = {}): Promise<Dev> {
  const emulator = await startDemoEmulator({ port: options.emulatorPort ?? 0 });
  // Vite hands VITE_* environment variables to the app as import.meta.env.
  // (A `define` would do too, but it changes Vite's config hash with every
  // emulator port and makes Vite re-optimise its dependencies each start.)
  const previousUrl = process.env.VITE_FLAME_URL;
  process.env.VITE_FLAME_URL = emulator.url;
  const restoreEnv = () => {
    if (previousUrl === undefined) delete process.env.VITE_FLAME_URL;
    else process.env.VITE_FLAME_URL = previousUrl;
  };
  let vite: ViteDevServer;
  try {
    vite = await createServer({
      root,
      configFile: `${root}vite.config.ts`,
      logLevel: options.verbose === false ? "silent" : "info",
      server: { port: options.port ?? 5173 },
    });
    await vite.listen();
  } catch (err) {
    restoreEnv();
    await emulator.close();
    throw err;
  }
  const url = vite.resolvedUrls?.local[0] ?? `http://127.0.0.1:${options.port ?? 5173}/`;
  return {
    url,
    emulator,
    vite,
    async close() {
      await vite.close();
      restoreEnv();
      await emulator.close();
    },
  };
}
