import { defaultClientConditions, defineConfig } from "vite";

// The dashboard bundles the workspace packages from their TypeScript
// sources ("@flame-ts/source"), so neither dev nor build needs `npm run build`.
export default defineConfig({
  resolve: { conditions: ["@flame-ts/source", ...defaultClientConditions] },
  build: { target: "es2022", outDir: "dist", emptyOutDir: true },
  server: { host: "127.0.0.1" },
});
