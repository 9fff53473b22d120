// The hostile-client suite (suite.ts) against a gateway in front of an
// emulator, each in a process of its own, over real sockets.
import { hostileSuite } from "./suite.js";

hostileSuite("gateway");
