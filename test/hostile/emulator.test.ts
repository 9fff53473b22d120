// The hostile-client suite (suite.ts) against the emulator, in a process
// of its own, over real sockets.
import { hostileSuite } from "./suite.js";

hostileSuite("emulator");
