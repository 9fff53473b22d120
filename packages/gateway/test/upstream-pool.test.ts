import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway, startGateway } from "../src/index.js";
import { clientFor, type Protocol } from "./clients.js";
import { eventually, type FakeFlame, startFakeFlame } from "./fake-flame.js";
import { rejection } from "./rejection.js";

describe.each<Protocol>(["grpc-web", "grpc"])("the upstream pool, clients over %s", (protocol) => {
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
    const client = clientFor(protocol, gateway.url);
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
    // Closing the gateway ends every watch it holds and cancels it upstream.
    await gateway.close();
    await eventually(() => flame.streamsCancelled === cancelled + 10, "all watches cancelled");
  });
});

describe("upstream resets", () => {
  it("move calls to a fresh connection before one has sent the upstream's reset budget", async () => {
    const flame = await startFakeFlame();
    const gateway = await startGateway({ upstream: flame.url });
    const held = new AbortController();
    try {
      // A watch held throughout, on the first upstream connection.
      const watch = clientFor("grpc", gateway.url)
        .watchTask({ sessionId: "s", taskId: "held" }, { signal: held.signal })
        [Symbol.asyncIterator]();
      expect((await watch.next()).done).toBe(false);
      const cancelled = flame.streamsCancelled;
      // 1,200 watches cancelled after their first message, each one reset
      // upstream: more than Node's HTTP/2 server (the fake Flame) takes on
      // one connection before GOAWAY (1,000, then 33 a second). Each batch
      // on a client connection of its own, within the gateway's own budget.
      const rounds = 24;
      const perRound = 50;
      for (let round = 0; round < rounds; round++) {
        const client = clientFor("grpc", gateway.url);
        await Promise.all(
          Array.from({ length: perRound }, async (_, i) => {
            const ac = new AbortController();
            const iterator = client
              .watchTask({ sessionId: "s", taskId: `r${round}-${i}` }, { signal: ac.signal })
              [Symbol.asyncIterator]();
            expect((await iterator.next()).done).toBe(false);
            ac.abort();
            await iterator.next().catch(() => undefined);
          }),
        );
      }
      const resets = rounds * perRound;
      await eventually(() => flame.streamsCancelled === cancelled + resets, "the resets to land");
      // The held watch's connection never got GOAWAY: the watch is still open.
      expect(gateway.stats().openStreams).toBe(1);
      expect(flame.streamsCancelled).toBe(cancelled + resets);
      held.abort();
      await eventually(() => flame.streamsCancelled === cancelled + resets + 1, "the held watch");
    } finally {
      held.abort();
      await gateway.close();
      await flame.close();
    }
  });
});

describe("upstream limits", () => {
  it("refuse a call past upstreamMaxStreams at once, without reaching the upstream", async () => {
    const flame = await startFakeFlame();
    const gateway = await startGateway({ upstream: flame.url, upstreamMaxStreams: 3 });
    const ac = new AbortController();
    try {
      const client = clientFor("grpc", gateway.url);
      for (let i = 0; i < 3; i++) {
        const iterator = client
          .watchTask({ sessionId: "s", taskId: `w${i}` }, { signal: ac.signal })
          [Symbol.asyncIterator]();
        expect((await iterator.next()).done).toBe(false);
      }
      expect(gateway.stats().upstreamStreams).toBe(3);
      const before = flame.totalCalls();
      const err = await rejection(client.getApplication({ name: "flmping" }));
      expect(err.code).toBe(Code.ResourceExhausted);
      expect(err.rawMessage).toContain("3 calls open to the upstream");
      expect(flame.totalCalls()).toBe(before);
      expect(gateway.stats().forwarded.GetApplication).toBeUndefined();
      expect(gateway.stats().rejected.busy).toBe(1);
      // Once the watches end, calls go through again.
      ac.abort();
      await eventually(() => gateway.stats().upstreamStreams === 0, "the watches to end");
      expect((await client.getApplication({ name: "flmping" })).metadata?.name).toBe("flmping");
    } finally {
      ac.abort();
      await gateway.close();
      await flame.close();
    }
  });

  it("open no more than upstreamMaxConnections connections", async () => {
    const flame = await startFakeFlame({ maxConcurrentStreams: 2 });
    const gateway = await startGateway({ upstream: flame.url, upstreamMaxConnections: 2 });
    const ac = new AbortController();
    try {
      const client = clientFor("grpc", gateway.url);
      const watch = (i: number) =>
        client
          .watchTask({ sessionId: "s", taskId: `c${i}` }, { signal: ac.signal })
          [Symbol.asyncIterator]()
          .next();
      // Two connections of two streams each: four watches fit.
      for (let i = 0; i < 4; i++) expect((await watch(i)).done).toBe(false);
      expect(gateway.stats().upstreamConnections).toBe(2);
      // Two more wait on those connections for a free stream; no third connection opens.
      const waiting = [watch(4), watch(5)];
      await eventually(() => gateway.stats().upstreamStreams === 6, "six calls admitted");
      expect(gateway.stats().upstreamConnections).toBe(2);
      expect(flame.streamsStarted).toBe(4);
      ac.abort();
      await Promise.allSettled(waiting);
    } finally {
      ac.abort();
      await gateway.close();
      await flame.close();
    }
  });
});
