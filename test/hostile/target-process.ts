// Runs one server under attack in a process of its own, so that the hostile
// tests can measure its memory and see it crash. Started by target.ts with
// one JSON argument (a TargetConfig); prints "hostile-target <url>" when ready.
import { startEmulator } from "@flame-ts/emulator";
import type { TargetConfig } from "./target-config.js";

const config = JSON.parse(process.argv[2] as string) as TargetConfig;

const main = async () => {
  if (config.kind === "emulator") {
    const emulator = await startEmulator({ ...config.limits, runningDelayMs: 0 });
    return emulator.url;
  }
  // Loaded only here: an emulator target does not depend on the gateway.
  const { createStreamLogger, startGateway } = await import("@flame-ts/gateway");
  const gateway = await startGateway({
    upstream: config.upstream,
    ...config.limits,
    ...(config.bearerToken === undefined ? {} : { bearerToken: config.bearerToken }),
    allowedOrigins: ["http://allowed.example"],
    logger: createStreamLogger("info"),
  });
  return gateway.url;
};

main().then(
  (url) => process.stdout.write(`hostile-target ${url}\n`),
  (error: unknown) => {
    process.stderr.write(`target failed to start: ${String(error)}\n`);
    process.exit(1);
  },
);
