import { Code } from "@connectrpc/connect";
import { ApplicationState, FlameError, Shim } from "@flame-ts/core";
import { describe, expect, it } from "vitest";
import { engines, expectStableOrder, rejection, unique, useHarness } from "./helpers.js";

describe.each(engines)("applications over HTTP/2 on %s", (storage) => {
  const h = useHarness({ storage });

  it("lists the three built-in applications (both spellings)", async () => {
    const names = (await h.connection.listApplications()).map((a) => a.name).sort();
    expect(names).toEqual(expect.arrayContaining(["flmexec", "flmping", "flmrun"]));
    expect((await h.connection.listApplication()).length).toBe(names.length);
  });

  it("lists applications oldest first, ties by name, the same on every call", async () => {
    for (let i = 0; i < 6; i++) await h.connection.registerApplication(unique("order"), {});
    // Flame's order (and the emulator's) is arbitrary; the client's is not.
    await expectStableOrder(
      () => h.connection.listApplications(),
      async () =>
        (await h.connection.client.listApplication({})).applications.map(
          (a) => a.metadata?.name ?? "",
        ),
      (a) => a.name,
    );
  });

  it("registers, reads, updates and unregisters an application", async () => {
    const name = unique("app");
    await h.connection.registerApplication(name, {
      shim: Shim.Host,
      description: "test app",
      labels: ["a", "b"],
      command: "/bin/true",
      arguments: ["-x"],
      environments: { A: "1", B: "two" },
      workingDirectory: "/tmp",
      maxInstances: 5,
      delayRelease: 30,
      schema: { input: { type: "string" }, output: '{"type":"number"}' },
      url: "file:///opt/app",
      installer: "pip",
    });
    const app = await h.connection.getApplication(name);
    expect(app).toMatchObject({
      name,
      state: ApplicationState.Enabled,
      shim: Shim.Host,
      description: "test app",
      labels: ["a", "b"],
      command: "/bin/true",
      arguments: ["-x"],
      environments: { A: "1", B: "two" },
      workingDirectory: "/tmp",
      maxInstances: 5,
      delayRelease: 30,
      schema: { input: '{"type":"string"}', output: '{"type":"number"}' },
      url: "file:///opt/app",
      installer: "pip",
    });
    expect(app.creationTime).toBeInstanceOf(Date);
    expect(app.creationTime.getTime()).toBeGreaterThan(Date.UTC(2020, 0, 1));

    await h.connection.updateApplication(name, { description: "changed", command: "/bin/false" });
    expect((await h.connection.getApplication(name)).description).toBe("changed");

    await h.connection.unregisterApplication(name);
    const err = await rejection(h.connection.getApplication(name));
    expect(FlameError.is(err, "not-found")).toBe(true);
  });

  it("registering a taken name is already-exists (none overwrites)", async () => {
    const name = unique("twice");
    await h.connection.registerApplication(name, { description: "first" });
    if (storage === "none") {
      await h.connection.registerApplication(name, { description: "second" });
      expect((await h.connection.getApplication(name)).description).toBe("second");
      return;
    }
    const err = (await rejection(
      h.connection.registerApplication(name, { description: "second" }),
    )) as FlameError;
    expect(err.kind).toBe("already-exists");
    expect(err.method).toBe("RegisterApplication");
    expect(err.serverMessage).toMatch(
      storage === "sqlite" ? /UNIQUE constraint failed: applications\.name/ : /already exists/,
    );
    expect((await h.connection.getApplication(name)).description).toBe("first");
  });

  it("a bad JSON Schema is refused with kind invalid-config and the server's message", async () => {
    const err = await rejection(
      h.connection.registerApplication(unique("bad"), { schema: { input: "{not json" } }),
    );
    expect(FlameError.is(err)).toBe(true);
    const e = err as FlameError;
    expect(e.method).toBe("RegisterApplication");
    expect(e.kind).toBe("invalid-config");
    expect(e.code).toBe(Code.InvalidArgument);
    expect(e.serverMessage).toContain("invalid input schema");
    expect(e.message).toContain(e.serverMessage as string);
  });

  it("a relative working directory is refused with kind invalid-config", async () => {
    const err = (await rejection(
      h.connection.registerApplication(unique("wd"), { workingDirectory: "relative/dir" }),
    )) as FlameError;
    expect(err.kind).toBe("invalid-config");
    expect(err.serverMessage).toContain("relative/dir");
  });

  it("a name Flame does not allow is refused with kind invalid-config", async () => {
    const err = (await rejection(h.connection.registerApplication("bad/name", {}))) as FlameError;
    expect(err.kind).toBe("invalid-config");
    expect(err.serverMessage).toContain("bad/name");
  });

  it("update of an unknown application is not-found; unregister: fs refuses, sqlite and none accept", async () => {
    const name = unique("missing");
    const u = (await rejection(h.connection.updateApplication(name, {}))) as FlameError;
    expect(u.kind).toBe("not-found");
    expect(u.method).toBe("UpdateApplication");
    if (storage === "fs") {
      const d = (await rejection(h.connection.unregisterApplication(name))) as FlameError;
      expect(d.kind).toBe("not-found");
      expect(d.method).toBe("UnregisterApplication");
    } else {
      await h.connection.unregisterApplication(name);
    }
  });

  it("update and unregister with open sessions: sqlite and fs refuse (invalid-state), none allows", async () => {
    const name = unique("busy");
    await h.connection.registerApplication(name, { description: "v1" });
    const s = await h.connection.createSession({ application: name });
    if (storage === "none") {
      await h.connection.updateApplication(name, { description: "v2" });
      await h.connection.unregisterApplication(name);
    } else {
      const u = (await rejection(
        h.connection.updateApplication(name, { description: "v2" }),
      )) as FlameError;
      expect(u.kind).toBe("invalid-state");
      const d = (await rejection(h.connection.unregisterApplication(name))) as FlameError;
      expect(d.kind).toBe("invalid-state");
      expect(d.serverMessage).toMatch(/open sessions/);
      // Closed, the application can go, and its sessions go with it.
      await s.close();
      await h.connection.unregisterApplication(name);
    }
    expect((await rejection(h.connection.getSession(s.id))) as FlameError).toMatchObject({
      kind: "not-found",
    });
  });

  it("GetApplication of an unknown name is not-found with code NotFound", async () => {
    const err = (await rejection(h.connection.getApplication("nope"))) as FlameError;
    expect(err.kind).toBe("not-found");
    expect(err.method).toBe("GetApplication");
    expect(err.code).toBe(Code.NotFound);
  });
});
