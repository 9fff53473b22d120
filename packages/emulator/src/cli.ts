#!/usr/bin/env node
import { parseCliArgs, USAGE } from "./cli-args.js";
import { startEmulator } from "./emulator.js";

const main = async () => {
  let command: ReturnType<typeof parseCliArgs>;
  try {
    command = parseCliArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`flame-emulator: ${(error as Error).message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (command.help) {
    console.log(USAGE);
    return;
  }
  const emulator = await startEmulator(command.options);
  console.log(`Flame emulator listening on ${emulator.url}`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await emulator.close();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
};

main().catch((error: unknown) => {
  console.error(`flame-emulator: ${(error as Error).message ?? error}`);
  process.exit(1);
});
