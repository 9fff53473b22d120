import { defaultServerConditions } from "vite";
import { defineConfig } from "vitest/config";

// Tests import workspace packages from their TypeScript sources through the
// "@flame-ts/source" export condition, so `npm test` needs no prior build.
const conditions = ["@flame-ts/source", ...defaultServerConditions];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts", "examples/*/test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});
