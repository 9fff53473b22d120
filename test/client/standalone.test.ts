// The standalone functions, over real HTTP/2 sockets, on a bare Channel
// (no methods) and on a Connection: every call the methods make is there
// as a function, the session may be named by id, a SessionInfo or a
// Session (whose codec then applies), and failures are the same FlameErrors.
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  Channel,
  Connection,
  closeSession,
  codecs,
  createSession,
  createTask,
  deleteSession,
  FlameError,
  getApplication,
  getNode,
  getSession,
  getTask,
  invoke,
  listApplications,
  listExecutors,
  listNodes,
  listSessions,
  listTasks,
  openOrCreateSession,
  openSession,
  registerApplication,
  run,
  runAll,
  runMany,
  runTask,
  SessionState,
  TaskState,
  unregisterApplication,
  updateApplication,
  watchSession,
  watchTask,
} from "@flame-ts/core";
import { lastValueFrom, toArray } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engines, gate, rejection, unique, useHarness } from "./helpers.js";

const text = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);
const utf8 = (s: string) => new TextEncoder().encode(s);

describe.each(engines)("standalone functions on a bare Channel, on %s", (storage) => {
  const h = useHarness({ storage });
  let channel: Channel;

  /** An application whose tasks echo their input upper-cased, or fail on "fail...". */
  async function shoutingApp(): Promise<string> {
    const app = unique("shout");
    await registerApplication(channel, app, { description: "shouts" });
    h.emulator.serve(app, async ({ input }) => {
      const said = text(input);
      if (said.startsWith("fail")) throw new Error(`refused ${said}`);
      return said.toUpperCase();
    });
    return app;
  }

  beforeAll(() => {
    channel = new Channel(createGrpcTransport({ baseUrl: h.emulator.url }), { retry: false });
  });

  afterAll(() => channel?.close());

  it("a Channel has no call methods; a Connection is a Channel", () => {
    expect(channel).not.toBeInstanceOf(Connection);
    expect("listSessions" in channel).toBe(false);
    expect(h.connection).toBeInstanceOf(Channel);
  });

  it("applications: register, get, list, update, unregister", async () => {
    const app = unique("app");
    await registerApplication(channel, app, { description: "first", command: "/bin/true" });
    expect((await getApplication(channel, app)).description).toBe("first");
    expect((await listApplications(channel)).map((a) => a.name)).toContain(app);
    await updateApplication(channel, app, { description: "second" });
    expect((await getApplication(channel, app)).description).toBe("second");
    await unregisterApplication(channel, app);
    const gone = (await rejection(getApplication(channel, app))) as FlameError;
    expect(FlameError.is(gone, "not-found")).toBe(true);
    // A taken name: already-exists, where the none engine overwrites instead.
    const taken = registerApplication(channel, "flmping", { description: "again" });
    if (storage === "none") await taken;
    else expect(FlameError.is(await rejection(taken), "already-exists")).toBe(true);
  });

  it("sessions: create, open, open-or-create, get, list, close, delete", async () => {
    const app = await shoutingApp();
    const created = await createSession(channel, { application: app, resreq: "cpu=1,mem=1k" });
    expect(created.id).toMatch(new RegExp(`^${app}-[A-Za-z0-9]{6}$`));
    expect(created.state).toBe(SessionState.Open);
    // Plain data: resreq is numbers, not a ResourceRequirement.
    expect(created.resreq).toEqual({ cpu: 1, memory: 1024n, gpu: 0 });

    expect((await openSession(channel, created.id)).application).toBe(app);
    const id = unique("ooc");
    const made = await openOrCreateSession(channel, id, { application: app });
    expect(made.id).toBe(id);
    const again = await openOrCreateSession(channel, id, { application: app });
    expect(again.id).toBe(id);
    const mismatch = await rejection(openOrCreateSession(channel, id, { application: "flmping" }));
    expect(FlameError.is(mismatch, "invalid-config")).toBe(true);

    expect((await getSession(channel, id)).id).toBe(id);
    expect((await listSessions(channel)).map((s) => s.id)).toEqual(
      expect.arrayContaining([created.id, id]),
    );

    const closed = await closeSession(channel, id);
    expect(closed.state).toBe(SessionState.Closed);
    const reopen = await rejection(openSession(channel, id));
    expect(FlameError.is(reopen, "invalid-state")).toBe(true);
    await deleteSession(channel, id);
    expect(FlameError.is(await rejection(getSession(channel, id)), "not-found")).toBe(true);
    // sqlite and fs refuse to delete an open session; the none engine deletes it.
    const open = deleteSession(channel, created.id);
    if (storage === "none") await open;
    else expect(FlameError.is(await rejection(open), "invalid-state")).toBe(true);
    expect(FlameError.is(await rejection(openSession(channel, "no-such")), "not-found")).toBe(true);
  });

  it("tasks: create, get, list and watch, with the session by id or by SessionInfo", async () => {
    const app = await shoutingApp();
    const session = await createSession(channel, { application: app });
    const byId = await createTask(channel, session.id, utf8("one"));
    const byInfo = await createTask(channel, session, utf8("two"));
    const states = await lastValueFrom(watchTask(channel, session, byId.id).pipe(toArray()));
    expect(states.at(-1)?.state).toBe(TaskState.Succeed);
    expect(states.filter((t) => t.state === TaskState.Succeed)).toHaveLength(1);
    await lastValueFrom(watchTask(channel, session.id, byInfo.id));
    expect(text((await getTask(channel, session.id, byInfo.id)).output)).toBe("TWO");
    expect((await listTasks(channel, session)).map((t) => t.id)).toEqual([byId.id, byInfo.id]);
    const missing = await rejection(lastValueFrom(watchTask(channel, session, "999")));
    expect(FlameError.is(missing, "not-found")).toBe(true);
  });

  it("runs: runTask, run, invoke, runMany, runAll; a Session's codec applies", async () => {
    const app = await shoutingApp();
    const info = await createSession(channel, { application: app });

    const seen = await lastValueFrom(runTask(channel, info, utf8("rt")).pipe(toArray()));
    expect(seen[0]?.state).toBe(TaskState.Pending);
    expect(text(seen.at(-1)?.output)).toBe("RT");

    const bytes = await run(channel, info, utf8("raw"));
    expect(bytes.state).toBe(TaskState.Succeed);
    expect(text(bytes.output)).toBe("RAW");

    // A Session (from the Connection) carries its codec: strings in and out.
    const session = await h.connection.openSession(info.id, { codec: codecs.string });
    const typed: string = await invoke(channel, session, "typed");
    expect(typed).toBe("TYPED");
    const failed = await run(channel, session, "fail-now");
    expect(failed.state).toBe(TaskState.Failed);
    expect(failed.errorMessage).toContain("refused fail-now");
    const refused = await rejection(invoke(channel, session, "fail-again"));
    expect(FlameError.is(refused, "internal")).toBe(true);

    const progress = await lastValueFrom(
      runMany(channel, session, ["a", "b", "c"], { concurrency: 2 }).pipe(toArray()),
    );
    expect(progress.map((p) => p.done)).toEqual([1, 2, 3]);
    expect(progress.map((p) => p.result.output).sort()).toEqual(["A", "B", "C"]);
    const all = await runAll(channel, session, ["x", "y"]);
    expect(all.map((r) => r.output)).toEqual(["X", "Y"]);
  });

  it("watchSession sees every task of a session to its end", async () => {
    const app = unique("held");
    await registerApplication(channel, app);
    const hold = gate<string>();
    h.emulator.serve(app, () => hold.promise);
    const session = await createSession(channel, { application: app });
    const tasks = await Promise.all([1, 2, 3].map(() => createTask(channel, session)));
    const latest = new Map<string, TaskState>();
    const watched = lastValueFrom(
      watchSession(channel, session.id, { pollIntervalMs: 20 }).pipe(toArray()),
    );
    hold.open("done");
    await Promise.all(tasks.map((t) => lastValueFrom(watchTask(channel, session, t.id))));
    await closeSession(channel, session.id);
    // It completes once the session is closed and every task is terminal.
    for (const t of await watched) latest.set(t.id, t.state);
    expect([...latest.keys()].sort()).toEqual(tasks.map((t) => t.id).sort());
    expect([...latest.values()]).toEqual([TaskState.Succeed, TaskState.Succeed, TaskState.Succeed]);
  });

  it("cluster: nodes and executors", async () => {
    const nodes = await listNodes(channel);
    expect(nodes.length).toBeGreaterThan(0);
    const first = nodes[0];
    expect((await getNode(channel, first?.name ?? "")).name).toBe(first?.name);
    expect(FlameError.is(await rejection(getNode(channel, "no-such-node")), "not-found")).toBe(
      true,
    );
    expect(Array.isArray(await listExecutors(channel))).toBe(true);
  });

  it("after close(), every function fails with kind cancelled", async () => {
    const closing = new Channel(createGrpcTransport({ baseUrl: h.emulator.url }));
    expect((await listSessions(closing)).length).toBeGreaterThanOrEqual(0);
    await closing.close();
    expect(closing.closed).toBe(true);
    const err = (await rejection(listSessions(closing))) as FlameError;
    expect(FlameError.is(err, "cancelled")).toBe(true);
    expect(err.message).toContain("the connection is closed");
  });
});
