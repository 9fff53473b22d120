import { Code } from "@connectrpc/connect";
import { SessionState } from "@flame-ts/core/gen";
import { describe, expect, it } from "vitest";
import { EMULATOR_STORAGES } from "../src/index.js";
import { collect, expectCode, startHarness, waitFor } from "./helpers.js";

describe.each(EMULATOR_STORAGES)("maxSessions eviction on %s", (storage) => {
  it("drops the closed sessions that finished first until fewer than the limit remain", async () => {
    const h = await startHarness({ storage, maxSessions: 3 });
    try {
      const create = (id: string) =>
        h.client.createSession({ sessionId: id, session: { application: "flmping" } });
      await create("a");
      await create("b");
      await h.client.createTask({ task: { sessionId: "a" } });
      await h.client.closeSession({ sessionId: "a" });
      await h.client.closeSession({ sessionId: "b" });
      // Two sessions, under the limit: both still there.
      expect((await h.client.listSession({})).sessions).toHaveLength(2);
      // The third reaches the limit: the first closed ("a") goes, leaving two.
      await create("c");
      const left = (await h.client.listSession({})).sessions.map((s) => s.metadata?.id).sort();
      expect(left).toEqual(["b", "c"]);
      const error = await expectCode(h.client.getSession({ sessionId: "a" }), Code.NotFound);
      expect(error.rawMessage).toBe("a");
      await expectCode(h.client.getTask({ sessionId: "a", taskId: "1" }), Code.NotFound, "a");
      await expectCode(collect(h.client.listTask({ sessionId: "a" })), Code.NotFound);
      await expectCode(h.client.closeSession({ sessionId: "a" }), Code.NotFound, "session <a>");

      // Open sessions are never evicted: with none closed, the limit is passed.
      await create("d");
      await create("e");
      await create("f");
      const states = (await h.client.listSession({})).sessions.map((s) => s.status?.state);
      expect(states.filter((s) => s === SessionState.Open)).toHaveLength(4);
      expect(states).toHaveLength(4);

      // sqlite and fs still have "a" on disk; none has forgotten it.
      const again = h.client.createSession({
        sessionId: "a",
        session: { application: "flmping" },
      });
      if (storage === "none") {
        expect((await again).status?.state).toBe(SessionState.Open);
      } else {
        await expectCode(again, storage === "fs" ? Code.AlreadyExists : Code.Internal);
        const reopen = h.client.openSession({ sessionId: "a" });
        await expectCode(reopen, Code.InvalidArgument, "is not open");
        const task = h.client.createTask({ task: { sessionId: "a" } });
        await expectCode(task, storage === "fs" ? Code.InvalidArgument : Code.Internal);
      }
    } finally {
      await h.emulator.close();
    }
  });

  it("closing a session at the limit evicts at once", async () => {
    const h = await startHarness({ storage, maxSessions: 2 });
    try {
      for (const id of ["x", "y"]) {
        await h.client.createSession({ sessionId: id, session: { application: "flmping" } });
      }
      const closed = await h.client.closeSession({ sessionId: "x" });
      // The reply still describes it; afterwards it is gone.
      expect(closed.status?.state).toBe(SessionState.Closed);
      await waitFor(async () => (await h.client.listSession({})).sessions.length === 1, "evicted");
      await expectCode(h.client.getSession({ sessionId: "x" }), Code.NotFound);
    } finally {
      await h.emulator.close();
    }
  });
});

describe("maxSessions", () => {
  it("must be a positive integer", async () => {
    await expect(startHarness({ maxSessions: 0 })).rejects.toThrow(
      "maxSessions must be a positive integer, got 0",
    );
  });
});
