import { ApplicationState, FlameError, Shim } from "@flame-ts/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, rejection, startHarness, unique } from "./helpers.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

describe("applications over HTTP/2", () => {
  it("lists the three built-in applications (both spellings)", async () => {
    const names = (await h.connection.listApplications()).map((a) => a.name).sort();
    expect(names).toEqual(expect.arrayContaining(["flmexec", "flmping", "flmrun"]));
    expect((await h.connection.listApplication()).length).toBe(names.length);
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

  it("turns an in-band failure (bad JSON Schema) into a FlameError with the server's message", async () => {
    const err = await rejection(
      h.connection.registerApplication(unique("bad"), { schema: { input: "{not json" } }),
    );
    expect(FlameError.is(err)).toBe(true);
    const e = err as FlameError;
    expect(e.method).toBe("RegisterApplication");
    expect(e.kind).toBe("invalid-config");
    expect(e.serverMessage).toBeTruthy();
    expect(e.message).toContain(e.serverMessage as string);
  });

  it("turns a relative working directory into an in-band FlameError", async () => {
    const err = await rejection(
      h.connection.registerApplication(unique("wd"), { workingDirectory: "relative/dir" }),
    );
    expect((err as FlameError).serverMessage).toContain("relative/dir");
  });

  it("reports an in-band failure of update and unregister for an unknown application", async () => {
    const name = unique("missing");
    const u = await rejection(h.connection.updateApplication(name, {}));
    expect(FlameError.is(u)).toBe(true);
    expect((u as FlameError).method).toBe("UpdateApplication");
    const d = await rejection(h.connection.unregisterApplication(name));
    expect(FlameError.is(d)).toBe(true);
    expect((d as FlameError).method).toBe("UnregisterApplication");
  });

  it("GetApplication of an unknown name is not-found with code NotFound", async () => {
    const err = (await rejection(h.connection.getApplication("nope"))) as FlameError;
    expect(err.kind).toBe("not-found");
    expect(err.method).toBe("GetApplication");
    expect(err.code).toBe(5);
  });
});
