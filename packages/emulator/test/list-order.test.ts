import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, type Harness, startHarness } from "./helpers.js";

const ids = (items: { metadata?: { id: string } }[]) => items.map((item) => item.metadata?.id);

/** Lists 20 sessions and 20 tasks of one of them, in reply order. */
const snapshot = async (h: Harness) => ({
  sessions: ids((await h.client.listSession({})).sessions),
  tasks: ids(await collect(h.client.listTask({ sessionId: "s0" }))),
  applications: ids((await h.client.listApplication({})).applications),
});

const populate = async (h: Harness) => {
  h.emulator.pause();
  for (let i = 0; i < 20; i++) {
    await h.client.createSession({ sessionId: `s${i}`, session: { application: "flmping" } });
    await h.client.registerApplication({ name: `app${i}`, application: {} });
  }
  for (let i = 0; i < 20; i++) await h.client.createTask({ task: { sessionId: "s0" } });
};

describe("List replies come in no particular order", () => {
  let a: Harness;
  let b: Harness;
  beforeAll(async () => {
    a = await startHarness({ listSeed: 7 });
    b = await startHarness({ listSeed: 7 });
    await populate(a);
    await populate(b);
  });
  afterAll(async () => {
    await a.emulator.close();
    await b.emulator.close();
  });

  it("every item is there, shuffled", async () => {
    const { sessions, tasks, applications } = await snapshot(a);
    const created = Array.from({ length: 20 }, (_, i) => `s${i}`);
    expect([...sessions].sort()).toEqual([...created].sort());
    expect(sessions).not.toEqual(created);
    const numbered = Array.from({ length: 20 }, (_, i) => String(i + 1));
    expect([...tasks].sort((x, y) => Number(x) - Number(y))).toEqual(numbered);
    expect(tasks).not.toEqual(numbered);
    expect(applications).toHaveLength(23);
    // The same seed, the same calls: the same order.
    expect(await snapshot(b)).toEqual({ sessions, tasks, applications });
  });

  it("each call shuffles afresh, reproducibly", async () => {
    const first = await snapshot(a);
    const second = await snapshot(a);
    expect(await snapshot(b)).toEqual(first);
    expect(await snapshot(b)).toEqual(second);
    expect(second.sessions).not.toEqual(first.sessions);
  });

  it("reset() starts the seed's sequence again", async () => {
    const other = await startHarness({ listSeed: 99 });
    try {
      await populate(other);
      const first = await snapshot(other);
      other.emulator.reset();
      await populate(other);
      expect(await snapshot(other)).toEqual(first);
    } finally {
      await other.emulator.close();
    }
  });
});
