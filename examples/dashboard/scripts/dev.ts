// One command for the demo: an emulator with the `demo` application, then
// Vite's dev server pointed at it. Ctrl-C stops both.
import { fileURLToPath } from "node:url";
import { createServer } from "vite";
import { startDemoEmulator } from "./demo-emulator.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const emulator = await startDemoEmulator({
  port: Number(process.env.FLAME_EMULATOR_PORT ?? 0),
});
// Vite exposes VITE_* variables from the environment to the app.
process.env.VITE_FLAME_URL = emulator.url;

const vite = await createServer({ root, configFile: `${root}vite.config.ts` });
await vite.listen();
console.log(`Flame emulator: ${emulator.url} (applications: demo, flmping, flmexec, flmrun)`);
vite.printUrls();

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await vite.close();
  await emulator.close();
  process.exit(0);
}
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
