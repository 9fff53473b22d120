import { type BenchCase, SkipCase } from "./context.js";

export const gatewayLatency: BenchCase = {
  name: "gateway-latency",
  async run() {
    throw new SkipCase("not yet");
  },
};
