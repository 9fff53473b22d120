// The emulator in its own process, as `flame-emulator` runs it, plus an IPC
// channel so a benchmark can pause/resume it and read its counters (the CLI
// has no such handle). Started by emulator-process.ts; not run by hand.
import { startEmulator } from "@flame-ts/emulator";

export type EmulatorCommand = { id: number; op: "pause" | "resume" | "stats" | "close" };

// The bare baseline of the watches case holds all its WatchTask streams open
// on one connection, past the 100 a client connection gets by default; the
// benchmark is a trusted client, so the limit is lifted here.
const emulator = await startEmulator({ port: 0, maxStreamsPerConnection: 100_000 });
console.log(`Flame emulator listening on ${emulator.url}`);

process.on("message", async (message: EmulatorCommand) => {
  let value: unknown;
  switch (message.op) {
    case "pause":
      emulator.pause();
      break;
    case "resume":
      emulator.resume();
      break;
    case "stats":
      value = emulator.stats();
      break;
    case "close":
      await emulator.close();
      process.send?.({ id: message.id }, () => process.exit(0));
      return;
  }
  process.send?.({ id: message.id, value });
});
// The parent going away must not leave an orphan server behind.
process.on("disconnect", () => process.exit(0));
