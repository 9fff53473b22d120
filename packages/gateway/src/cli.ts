#!/usr/bin/env node
// flame-gateway: the command-line face of startGateway().
import { parseCliArgs, UsageError, usage } from "./cli-args.js";
import { startGateway } from "./gateway.js";
import { createStreamLogger } from "./logger.js";

async function main(): Promise<number> {
  let config: ReturnType<typeof parseCliArgs>;
  try {
    config = parseCliArgs(process.argv.slice(2), process.env);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`flame-gateway: ${e.message}\n\n${usage}`);
      return 2;
    }
    throw e;
  }
  if (config.help) {
    process.stdout.write(usage);
    return 0;
  }
  const logger = createStreamLogger(config.logLevel);
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await startGateway({ ...config.options, logger });
  } catch (e) {
    process.stderr.write(`flame-gateway: ${(e as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`Flame gateway listening on ${gateway.url} -> ${gateway.upstream}\n`);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        // A second signal: the operator wants out now.
        resolve(1);
        return;
      }
      stopping = true;
      logger.info?.(`received ${signal}, closing`);
      gateway.close().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`flame-gateway: ${(e as Error)?.message ?? String(e)}\n`);
    process.exit(1);
  },
);
