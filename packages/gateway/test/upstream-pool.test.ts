import { afterAll, beforeAll, expect, it } from "vitest";
import { type Gateway, startGateway } from "../src/index.js";
import { clientFor } from "./clients.js";
import { eventually, type FakeFlame, startFakeFlame } from "./fake-flame.js";

let flame: FakeFlame;
let gateway: Gateway;

beforeAll(async () => {
  // An upstream that allows only 4 streams per connection, as real servers
  // cap them (hyper: 200): more open watches than that must not stall.
  flame = await startFakeFlame({ maxConcurrentStreams: 4 });
  gateway = await startGateway({ upstream: flame.url });
});

afterAll(async () => {
  await gateway?.close();
  await flame?.close();
});

it("opens more upstream connections when one is full of held streams", async () => {
  const client = clientFor("grpc-web", gateway.url);
  const ac = new AbortController();
  const started = flame.streamsStarted;
  const cancelled = flame.streamsCancelled;
  try {
    for (let i = 0; i < 10; i++) {
      const iterator = client
        .watchTask({ sessionId: "s", taskId: String(i) }, { signal: ac.signal })
        [Symbol.asyncIterator]();
      // Each watch gets its first message, so none is queued behind the others.
      expect((await iterator.next()).done).toBe(false);
    }
    expect(flame.streamsStarted).toBe(started + 10);
    expect(gateway.stats().openStreams).toBe(10);
    expect(gateway.stats().upstreamConnections).toBe(3);
    // Unary calls still get through while the watches are held.
    const app = await client.getApplication({ name: "flmping" });
    expect(app.metadata?.name).toBe("flmping");
  } finally {
    ac.abort();
  }
  await eventually(() => flame.streamsCancelled === cancelled + 10, "all watches cancelled");
});
