import { Code } from "@connectrpc/connect";
import {
  codecs,
  ExecutorState,
  FlameError,
  NodeState,
  ResourceRequirement,
  SessionState,
  TaskState,
} from "@flame-ts/core";
import { lastValueFrom } from "rxjs";
import { describe, expect, it } from "vitest";
import {
  engines,
  expectStableOrder,
  gate,
  rejection,
  unique,
  useHarness,
  waitFor,
} from "./helpers.js";

describe.each(engines)("sessions over HTTP/2 on %s", (storage) => {
  const h = useHarness({ storage });

  it("createSession without an id generates <application>-<6 [A-Za-z0-9]>, as Flame's SDKs do", async () => {
    const s = await h.connection.createSession({ application: "flmexec" });
    expect(s.id).toMatch(/^flmexec-[A-Za-z0-9]{6}$/);
    expect(s.application).toBe("flmexec");
    expect(s.state).toBe(SessionState.Open);
    expect(s.creationTime).toBeInstanceOf(Date);
    expect(s.creationTime.getTime()).toBeGreaterThan(Date.UTC(2020, 0, 1));
    expect(s.completionTime).toBeUndefined();
    expect(s.maxInstances).toBeUndefined();
    expect([s.pending, s.running, s.succeed, s.failed, s.cancelled]).toEqual([0, 0, 0, 0, 0]);
  });

  it("sends every attribute: common data, instances, priority, resreq string", async () => {
    const id = unique("full");
    const s = await h.connection.createSession({
      id,
      application: "flmexec",
      commonData: "shared",
      minInstances: 1,
      maxInstances: 3,
      priority: 7,
      resreq: "cpu=2,mem=2g,gpu=0",
    });
    expect(s.id).toBe(id);
    expect(new TextDecoder().decode(s.commonData)).toBe("shared");
    expect([s.minInstances, s.maxInstances, s.priority]).toEqual([1, 3, 7]);
    expect(s.resreq?.equals(ResourceRequirement.parse("cpu=2,mem=2g"))).toBe(true);
    const again = await h.connection.getSession(id);
    expect(again.resreq?.memory).toBe(2n * 1024n ** 3n);
  });

  it("a bad resreq string fails before anything is sent", async () => {
    const before = h.sent.CreateSession ?? 0;
    const err = await rejection(
      h.connection.createSession({ application: "flmexec", resreq: "cpu=1,disk=2" }),
    );
    expect(FlameError.is(err, "invalid-input")).toBe(true);
    expect((err as FlameError).message).toContain('"disk"');
    expect(h.sent.CreateSession ?? 0).toBe(before);
  });

  it("createSession: unknown application is not-found, a duplicate id already-exists (none accepts both)", async () => {
    const id = unique("dup");
    await h.connection.createSession({ id, application: "flmexec", priority: 1 });
    if (storage === "none") {
      // Flame's none engine keeps a session with a dangling application, and
      // a duplicate id replaces the session.
      const dangling = await h.connection.createSession({ application: "no-such-app" });
      expect(dangling.application).toBe("no-such-app");
      const replaced = await h.connection.createSession({
        id,
        application: "flmexec",
        priority: 2,
      });
      expect((await h.connection.getSession(replaced.id)).priority).toBe(2);
      return;
    }
    const unknown = (await rejection(
      h.connection.createSession({ application: "no-such-app" }),
    )) as FlameError;
    expect(unknown.kind).toBe("not-found");
    expect(unknown.method).toBe("CreateSession");
    // sqlite sends both as INTERNAL constraint errors; fs with their own codes.
    expect(unknown.code).toBe(storage === "sqlite" ? Code.Internal : Code.NotFound);
    const dup = (await rejection(
      h.connection.createSession({ id, application: "flmexec" }),
    )) as FlameError;
    expect(dup.kind).toBe("already-exists");
    expect(dup.code).toBe(storage === "sqlite" ? Code.Internal : Code.AlreadyExists);
  });

  it("openSession: existing, unknown (not-found), closed (invalid-state)", async () => {
    const id = unique("open");
    await h.connection.createSession({ id, application: "flmexec" });
    const opened = await h.connection.openSession(id);
    expect(opened.id).toBe(id);
    const missing = (await rejection(h.connection.openSession(unique("none")))) as FlameError;
    expect(missing.kind).toBe("not-found");
    expect(missing.code).toBe(Code.NotFound);
    await h.connection.closeSession(id);
    const before = h.sent.GetSession ?? 0;
    const closed = (await rejection(h.connection.openSession(id))) as FlameError;
    expect(closed.kind).toBe("invalid-state");
    expect(closed.method).toBe("OpenSession");
    if (storage === "none") {
      // none answers NOT_FOUND "session <id>" for unknown and closed alike:
      // one GetSession told them apart.
      expect(closed.code).toBe(Code.NotFound);
      expect(h.sent.GetSession ?? 0).toBe(before + 1);
      expect(closed.message).toContain(`session ${id} is closed`);
    } else {
      expect(closed.code).toBe(Code.InvalidArgument);
      expect(closed.serverMessage).toMatch(/is not open/);
      expect(h.sent.GetSession ?? 0).toBe(before);
    }
  });

  it("openOrCreateSession creates, then opens a matching spec, and refuses a different one", async () => {
    const id = unique("ooc");
    const created = await h.connection.openOrCreateSession(id, {
      application: "flmexec",
      priority: 2,
      commonData: "a",
    });
    expect(created.id).toBe(id);
    // common_data is not compared.
    const same = await h.connection.openOrCreateSession(id, {
      application: "flmexec",
      priority: 2,
      commonData: "b",
    });
    expect(same.priority).toBe(2);
    const err = (await rejection(
      h.connection.openOrCreateSession(id, { application: "flmexec", priority: 3 }),
    )) as FlameError;
    expect(err.kind).toBe("invalid-config");
    expect(err.serverMessage).toContain("spec mismatch");
    expect(err.serverMessage).toContain("priority");
  });

  it("openSession with a codec gives a typed session", async () => {
    const id = unique("typed");
    await h.connection.createSession({ id, application: "flmexec" });
    const s = await h.connection.openSession(id, { codec: codecs.string });
    expect(await s.invoke("hello")).toBe("hello");
  });

  it("getSession, listSessions (closed included, both spellings), refresh, counters", async () => {
    const id = unique("list");
    const s = await h.connection.createSession({ id, application: "flmexec" });
    await s.run(new Uint8Array([1]));
    await s.refresh();
    expect(s.succeed).toBe(1);
    await s.close();
    expect(s.state).toBe(SessionState.Closed);
    expect(s.completionTime).toBeInstanceOf(Date);
    const all = await h.connection.listSessions();
    const found = all.find((x) => x.id === id);
    expect(found?.state).toBe(SessionState.Closed);
    expect(found?.succeed).toBe(1);
    expect((await h.connection.listSession()).some((x) => x.id === id)).toBe(true);
    expect((await h.connection.getSession(id)).state).toBe(SessionState.Closed);
    const missing = (await rejection(h.connection.getSession(unique("none")))) as FlameError;
    expect(missing.kind).toBe("not-found");
  });

  it("closeSession is idempotent, cancels pending tasks, and fails while tasks run", async () => {
    const app = unique("held");
    await h.connection.registerApplication(app, {});
    const hold = gate<string>();
    h.emulator.serve(app, () => hold.promise);
    const s = await h.connection.createSession({ application: app, codec: codecs.string });
    const running = await s.createTask("x");
    await waitFor(async () => (await s.getTask(running.id)).state === TaskState.Running);
    const busy = (await rejection(s.close())) as FlameError;
    expect(busy.kind).toBe("invalid-state");
    expect(busy.method).toBe("CloseSession");
    hold.open("done");
    await lastValueFrom(s.watchTask(running.id));

    h.emulator.pause();
    try {
      const pending = await s.createTask("later");
      await s.close();
      await s.close();
      expect((await s.getTask(pending.id)).state).toBe(TaskState.Cancelled);
      expect(s.cancelled).toBe(1);
      if (storage === "none") {
        // none takes a task into a closed session (it stays Pending).
        const late = await s.createTask("no");
        expect((await s.getTask(late.id)).state).toBe(TaskState.Pending);
        return;
      }
      // sqlite sends INTERNAL "NOT NULL constraint failed: tasks.ssn_id" for a
      // closed and an unknown session alike (a GetSession decides); fs sends
      // INVALID_ARGUMENT "Cannot create task in closed session".
      const before = h.sent.GetSession ?? 0;
      const afterClose = (await rejection(s.createTask("no"))) as FlameError;
      expect(afterClose.kind).toBe("invalid-state");
      expect(afterClose.method).toBe("CreateTask");
      if (storage === "sqlite") {
        expect(afterClose.code).toBe(Code.Internal);
        expect(afterClose.serverMessage).toContain("tasks.ssn_id");
        expect(h.sent.GetSession ?? 0).toBe(before + 1);
      } else {
        expect(afterClose.code).toBe(Code.InvalidArgument);
        expect(afterClose.serverMessage).toBe("Cannot create task in closed session");
        expect(h.sent.GetSession ?? 0).toBe(before);
      }
    } finally {
      h.emulator.resume();
    }
  });

  it("deleteSession removes a closed session", async () => {
    const id = unique("del");
    await h.connection.createSession({ id, application: "flmexec" });
    await h.connection.closeSession(id);
    await h.connection.deleteSession(id);
    const err = (await rejection(h.connection.getSession(id))) as FlameError;
    expect(err.kind).toBe("not-found");
  });

  it("Flame's INTERNAL state refusals reach the caller as invalid-state, code and words kept", async () => {
    const app = unique("busy");
    await h.connection.registerApplication(app, {});
    const hold = gate<string>();
    h.emulator.serve(app, () => hold.promise);
    const s = await h.connection.createSession({ application: app, codec: codecs.string });
    const running = await s.createTask("x");
    await waitFor(async () => (await s.getTask(running.id)).state === TaskState.Running);

    // Close with a running task: refused by every engine.
    const busy = (await rejection(h.connection.closeSession(s.id))) as FlameError;
    expect(FlameError.is(busy, "invalid-state")).toBe(true);
    expect(busy.code).toBe(Code.Internal);
    expect(busy.method).toBe("CloseSession");
    expect(busy.serverMessage).toBe("Cannot close session with running tasks");
    expect(busy.message).toContain("Cannot close session with running tasks");

    hold.open("done");
    await lastValueFrom(s.watchTask(running.id));
    if (storage === "none") {
      // none deletes an open session.
      expect((await h.connection.deleteSession(s.id)).id).toBe(s.id);
      expect((await rejection(h.connection.getSession(s.id))) as FlameError).toMatchObject({
        kind: "not-found",
      });
      return;
    }
    // Delete while still open: sqlite and fs refuse, in their own words, and
    // nothing is removed.
    const open = (await rejection(h.connection.deleteSession(s.id))) as FlameError;
    expect(FlameError.is(open, "invalid-state")).toBe(true);
    expect(open.code).toBe(Code.Internal);
    expect(open.method).toBe("DeleteSession");
    expect(open.serverMessage).toMatch(
      storage === "sqlite" ? /failed to close session|open tasks/ : /Cannot delete open session/,
    );
    expect((await h.connection.getSession(s.id)).state).toBe(SessionState.Open);

    // Close first, then delete: it works and the session is gone.
    await h.connection.closeSession(s.id);
    const deleted = await h.connection.deleteSession(s.id);
    expect(deleted.id).toBe(s.id);
    expect(deleted.state).toBe(SessionState.Closed);
    expect(deleted.succeed).toBe(1);
    const gone = (await rejection(h.connection.getSession(s.id))) as FlameError;
    expect(gone.kind).toBe("not-found");
    expect(gone.code).toBe(Code.NotFound);
  });

  it("deleteSession of a closed session with Cancelled tasks: sqlite refuses (invalid-state), fs and none delete", async () => {
    h.emulator.pause();
    const s = await h.connection.createSession({ application: "flmexec" });
    try {
      await s.createTask();
      await s.close();
    } finally {
      h.emulator.resume();
    }
    expect(s.cancelled).toBe(1);
    if (storage === "sqlite") {
      const err = (await rejection(h.connection.deleteSession(s.id))) as FlameError;
      expect(err.kind).toBe("invalid-state");
      expect(err.serverMessage).toContain("open tasks in the session");
    } else {
      await h.connection.deleteSession(s.id);
      expect((await rejection(h.connection.getSession(s.id))) as FlameError).toMatchObject({
        kind: "not-found",
      });
    }
  });

  it("listSessions comes back oldest first, ties by id, the same on every call", async () => {
    const ids = Array.from({ length: 8 }, () => unique("order"));
    for (const id of ids) await h.connection.createSession({ id, application: "flmexec" });
    // Flame (and the emulator) list in no particular order; the client's is stable.
    const first = await expectStableOrder(
      () => h.connection.listSessions(),
      async () =>
        (await h.connection.client.listSession({})).sessions.map((m) => m.metadata?.id ?? ""),
      (s) => s.id,
    );
    expect(first.filter((id) => ids.includes(id)).length).toBe(ids.length);
  });
});

describe("cluster over HTTP/2", () => {
  const h = useHarness();

  it("listNodes and getNode; an unknown node is not-found", async () => {
    const nodes = await h.connection.listNodes();
    expect(nodes.length).toBeGreaterThan(0);
    const first = nodes[0]!;
    expect(first.state).toBe(NodeState.Ready);
    expect(first.capacity.cpu).toBeGreaterThan(0);
    expect(typeof first.capacity.memory).toBe("bigint");
    // Flame's session manager always sends 0 (unknown): no 1970 date.
    expect(first.lastHeartbeatTime).toBeUndefined();
    expect(first.allocatable.equals(first.capacity)).toBe(true);
    const node = await h.connection.getNode(first.name);
    expect(node.name).toBe(first.name);
    const err = (await rejection(h.connection.getNode("no-such-node"))) as FlameError;
    expect(err.kind).toBe("not-found");
    expect(err.method).toBe("GetNode");
  });

  it("listExecutors shows an executor bound to a session with tasks", async () => {
    const app = unique("exec");
    await h.connection.registerApplication(app, {});
    const hold = gate<string>();
    h.emulator.serve(app, () => hold.promise);
    const s = await h.connection.createSession({ application: app });
    const t = await s.createTask();
    await waitFor(async () => (await s.getTask(t.id)).state === TaskState.Running);
    const executors = await h.connection.listExecutors();
    const mine = executors.find((e) => e.sessionId === s.id);
    expect(mine).toBeDefined();
    expect(mine?.state).toBe(ExecutorState.ExecutorBound);
    expect(mine?.node).toBeTruthy();
    hold.open("ok");
    await lastValueFrom(s.watchTask(t.id));
  });
});
