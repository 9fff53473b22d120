import { describe } from "vitest";
import { floodAttacks } from "./floods.js";
import { requestAttacks } from "./requests.js";
import { slowClientAttacks } from "./slow-clients.js";
import { streamResetAttacks } from "./stream-resets.js";
import { type Target, useTarget } from "./target.js";

/**
 * Every attack of the hostile-client suite against one target, started
 * once for all of them: the emulator, or a gateway in front of one. Each
 * attack checks on its own that the server survived, that its peak memory
 * stayed bounded and that a normal client was served during and after.
 */
export function hostileSuite(name: Target["name"]): void {
  describe(`the ${name} against hostile clients`, () => {
    const target = useTarget(name);
    floodAttacks(name, target);
    slowClientAttacks(name, target);
    requestAttacks(name, target);
    streamResetAttacks(name, target);
  });
}
