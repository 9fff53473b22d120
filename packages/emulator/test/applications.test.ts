import { Code } from "@connectrpc/connect";
import { ApplicationState, Shim } from "@flame-ts/core/gen";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { expectCode, type Harness, startHarness } from "./helpers.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.emulator.close());
beforeEach(() => h.emulator.reset());

describe("applications", () => {
  it("starts with flmexec, flmping and flmrun", async () => {
    const { applications } = await h.client.listApplication({});
    expect(applications.map((a) => a.metadata?.name).sort()).toEqual([
      "flmexec",
      "flmping",
      "flmrun",
    ]);
    for (const app of applications) {
      expect(app.spec?.shim).toBe(Shim.Host);
      expect(app.spec?.description).toBeTruthy();
      expect(app.status?.state).toBe(ApplicationState.Enabled);
    }
  });

  it("gets one by name, with a creation time in milliseconds", async () => {
    const before = BigInt(Date.now());
    await h.client.registerApplication({ name: "pi", application: { description: "pi" } });
    const app = await h.client.getApplication({ name: "pi" });
    expect(app.metadata?.name).toBe("pi");
    expect(app.spec?.description).toBe("pi");
    const created = app.status?.creationTime ?? 0n;
    expect(created >= before && created <= BigInt(Date.now())).toBe(true);
  });

  it("GetApplication on an unknown name is NOT_FOUND", async () => {
    await expectCode(h.client.getApplication({ name: "nope" }), Code.NotFound, "not found");
  });

  it("registers, and reports a duplicate in-band", async () => {
    const ok = await h.client.registerApplication({ name: "a", application: {} });
    expect(ok.returnCode).toBe(0);
    const dup = await h.client.registerApplication({ name: "a", application: {} });
    expect(dup.returnCode).toBe(-1);
    expect(dup.message).toContain("already exists");
  });

  it("a missing application spec is INVALID_ARGUMENT", async () => {
    await expectCode(h.client.registerApplication({ name: "x" }), Code.InvalidArgument);
    await expectCode(h.client.updateApplication({ name: "flmping" }), Code.InvalidArgument);
  });

  it("accepts valid JSON Schemas and refuses invalid ones in-band", async () => {
    const good = await h.client.registerApplication({
      name: "typed",
      application: {
        schema: {
          input: JSON.stringify({ type: "object", properties: { n: { type: "integer" } } }),
          output: JSON.stringify({ type: "number" }),
          commonData: "true",
        },
      },
    });
    expect(good.returnCode).toBe(0);

    const notJson = await h.client.registerApplication({
      name: "bad1",
      application: { schema: { input: "{not json" } },
    });
    expect(notJson.returnCode).toBe(-1);
    expect(notJson.message).toContain("input");

    const notSchema = await h.client.registerApplication({
      name: "bad2",
      application: { schema: { output: JSON.stringify({ type: "no-such-type" }) } },
    });
    expect(notSchema.returnCode).toBe(-1);
    expect(notSchema.message).toContain("output");

    const badCommon = await h.client.registerApplication({
      name: "bad3",
      application: { schema: { commonData: JSON.stringify({ minimum: "ten" }) } },
    });
    expect(badCommon.returnCode).toBe(-1);
    expect(badCommon.message).toContain("common_data");
    await expectCode(h.client.getApplication({ name: "bad1" }), Code.NotFound);
  });

  it("requires an absolute working directory", async () => {
    const relative = await h.client.registerApplication({
      name: "rel",
      application: { workingDirectory: "work/dir" },
    });
    expect(relative.returnCode).toBe(-1);
    expect(relative.message).toContain("absolute");
    const absolute = await h.client.registerApplication({
      name: "abs",
      application: { workingDirectory: "/srv/work" },
    });
    expect(absolute.returnCode).toBe(0);
    const empty = await h.client.registerApplication({
      name: "empty",
      application: { workingDirectory: "" },
    });
    expect(empty.returnCode).toBe(0);
  });

  it("updates an application and reports an unknown one in-band", async () => {
    const updated = await h.client.updateApplication({
      name: "flmping",
      application: { description: "changed", maxInstances: 3 },
    });
    expect(updated.returnCode).toBe(0);
    const app = await h.client.getApplication({ name: "flmping" });
    expect(app.spec?.description).toBe("changed");
    expect(app.spec?.maxInstances).toBe(3);

    const unknown = await h.client.updateApplication({ name: "ghost", application: {} });
    expect(unknown.returnCode).toBe(-1);
    expect(unknown.message).toContain("not found");

    const invalid = await h.client.updateApplication({
      name: "flmping",
      application: { workingDirectory: "relative" },
    });
    expect(invalid.returnCode).toBe(-1);
  });

  it("unregisters, in-band failures for unknown or in-use applications", async () => {
    await h.client.registerApplication({ name: "gone", application: {} });
    expect((await h.client.unregisterApplication({ name: "gone" })).returnCode).toBe(0);
    await expectCode(h.client.getApplication({ name: "gone" }), Code.NotFound);

    const unknown = await h.client.unregisterApplication({ name: "gone" });
    expect(unknown.returnCode).toBe(-1);
    expect(unknown.message).toContain("not found");

    await h.client.registerApplication({ name: "busy", application: {} });
    await h.client.createSession({ sessionId: "s1", session: { application: "busy" } });
    const inUse = await h.client.unregisterApplication({ name: "busy" });
    expect(inUse.returnCode).toBe(-1);
    await h.client.closeSession({ sessionId: "s1" });
    expect((await h.client.unregisterApplication({ name: "busy" })).returnCode).toBe(0);
  });

  it("registers the applications given in options at start and after reset", async () => {
    const extra = await startHarness({ applications: { pi: { description: "pi app" } } });
    try {
      expect((await extra.client.getApplication({ name: "pi" })).spec?.description).toBe("pi app");
      extra.emulator.reset();
      expect((await extra.client.listApplication({})).applications).toHaveLength(4);
    } finally {
      await extra.emulator.close();
    }
  });
});
