import { afterAll, beforeAll } from "vitest";
import { type Gateway, startGateway } from "../src/index.js";
import { type FakeFlame, startFakeFlame } from "./fake-flame.js";

/**
 * A fake Flame and a gateway in front of it for the whole file, closed
 * after it; read `flame` and `gateway` inside tests.
 */
export function gatewayToFakeFlame(): { flame: FakeFlame; gateway: Gateway } {
  const fixture = {} as { flame: FakeFlame; gateway: Gateway };
  beforeAll(async () => {
    fixture.flame = await startFakeFlame();
    fixture.gateway = await startGateway({ upstream: fixture.flame.url });
  });
  afterAll(async () => {
    await fixture.gateway?.close();
    await fixture.flame?.close();
  });
  return fixture;
}
