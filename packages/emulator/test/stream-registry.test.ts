import { createContextValues, type HandlerContext } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { rawStreamKey, StreamRegistry } from "../src/stream-registry.js";

// Just what track() reads from a handler context.
const contextWith = (signal: AbortSignal, destroy = () => {}) =>
  ({
    signal,
    values: createContextValues().set(rawStreamKey, { destroy }),
  }) as unknown as HandlerContext;

async function* messages(...values: number[]): AsyncGenerator<number> {
  yield* values;
}

describe("StreamRegistry", () => {
  it("a stream whose body is never resumed is closed and cancelled by the abort", async () => {
    // connect-node can hang for ever in a write to an HTTP/1.1 socket the
    // client just closed, so the body stays suspended at its yield and its
    // finally never runs. The abort alone must close the stream.
    const registry = new StreamRegistry();
    const call = new AbortController();
    const stream = registry.track(contextWith(call.signal), messages(1, 2));
    expect(await stream.next()).toEqual({ value: 1, done: false });
    expect(registry.size).toBe(1);
    call.abort();
    expect(registry.size).toBe(0);
    expect(registry.cancelled).toBe(1);
    // Resumed after all, it is not counted twice.
    await stream.return(undefined);
    expect(registry.cancelled).toBe(1);
    expect(registry.started).toBe(1);
  });

  it("a stream that completes is closed and not cancelled, even if aborted afterwards", async () => {
    const registry = new StreamRegistry();
    const call = new AbortController();
    const received: number[] = [];
    for await (const value of registry.track(contextWith(call.signal), messages(1, 2))) {
      received.push(value);
    }
    expect(received).toEqual([1, 2]);
    expect(registry.size).toBe(0);
    // Node closes the response after it ends, which aborts the call's signal.
    call.abort();
    expect(registry.cancelled).toBe(0);
  });

  it("a stream broken by dropAll is closed but not counted as the client's cancel", async () => {
    const registry = new StreamRegistry();
    const call = new AbortController();
    const stream = registry.track(
      contextWith(call.signal, () => call.abort()),
      messages(1, 2),
    );
    await stream.next();
    registry.dropAll();
    expect(registry.size).toBe(0);
    expect(registry.cancelled).toBe(0);
  });

  it("a call aborted before its body starts is not left open", async () => {
    const registry = new StreamRegistry();
    const call = new AbortController();
    call.abort();
    const stream = registry.track(contextWith(call.signal), messages(1));
    await stream.next();
    expect(registry.size).toBe(0);
    await stream.return(undefined);
    expect(registry.size).toBe(0);
    expect(registry.cancelled).toBe(1);
  });
});
