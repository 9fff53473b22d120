// The gateway in its own process, as `flame-gateway` runs it, plus an IPC
// channel so a benchmark can read its heap after a full collection (the CLI
// has no such handle). Started by gateway-process.ts; not run by hand.
// Usage: gateway-child.ts <upstream URL>
import { startGateway } from "@flame-ts/gateway";
import { heapUsedAfterGc } from "./gc.js";

export type GatewayCommand = { id: number; op: "heap" | "stats" };

const gateway = await startGateway({ upstream: process.argv[2] ?? "" });
console.log(`Flame gateway listening on ${gateway.url}`);

process.on("message", async (message: GatewayCommand) => {
  const value = message.op === "heap" ? await heapUsedAfterGc() : gateway.stats();
  process.send?.({ id: message.id, value });
});
const stop = () => void gateway.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
// The parent going away must not leave an orphan server behind.
process.on("disconnect", stop);
