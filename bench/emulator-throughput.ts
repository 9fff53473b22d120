import { type BenchCase, SkipCase } from "./context.js";

export const emulatorThroughput: BenchCase = {
  name: "emulator-throughput",
  async run() {
    throw new SkipCase("not yet");
  },
};
