import { type BenchCase, SkipCase } from "./context.js";

export const bundleSize: BenchCase = {
  name: "bundle-size",
  async run() {
    throw new SkipCase("not yet");
  },
};
