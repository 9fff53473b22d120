// The no-cluster mode: a Flame emulator in this very process, with the Pi
// handler serving the application, reached over a real local gRPC socket.

import { type Emulator, startEmulator } from "@flame-ts/emulator";
import { piHandler } from "./pi-service.js";

/** Starts an emulator on 127.0.0.1 (free port) where `app` runs the Pi handler. */
export async function startPiEmulator(app = "pi"): Promise<Emulator> {
  // serve() only attaches the handler; Flame also needs the application registered.
  const emulator = await startEmulator({
    port: 0,
    host: "127.0.0.1",
    applications: {
      [app]: { description: 'Monte Carlo pi: input {"samples": N}, output {"inside": K}' },
    },
  });
  emulator.serve(app, piHandler);
  return emulator;
}
