// One command for the demo: an emulator with the `demo` application, then
// Vite's dev server pointed at it. Ctrl-C stops both.
import { startDev } from "./dev-server.js";

const dev = await startDev({
  port: process.env.PORT ? Number(process.env.PORT) : undefined,
  emulatorPort: Number(process.env.FLAME_EMULATOR_PORT ?? 0),
});
console.log(`Flame emulator: ${dev.emulator.url} (applications: demo, flmping, flmexec, flmrun)`);
dev.vite.printUrls();

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await dev.close();
  process.exit(0);
}
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
