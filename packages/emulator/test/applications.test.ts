import { Code } from "@connectrpc/connect";
import { ApplicationState, Shim } from "@flame-ts/core/gen";
import { describe, expect, it } from "vitest";
import { DEFAULT_APPLICATIONS, EMULATOR_STORAGES, type EmulatorStorage } from "../src/index.js";
import { expectCode, expectStamp, startHarness, useHarness } from "./helpers.js";

describe.each(EMULATOR_STORAGES)("applications on %s", (storage: EmulatorStorage) => {
  const h = useHarness({ storage });

  it("starts with flmexec, flmping and flmrun exactly as Flame registers them", async () => {
    const { applications } = await h.client.listApplication({});
    const byName = Object.fromEntries(applications.map((a) => [a.metadata?.name, a]));
    expect(Object.keys(byName).sort()).toEqual(["flmexec", "flmping", "flmrun"]);
    for (const app of applications) {
      expect(app.metadata?.id).toBe(app.metadata?.name);
      expect(app.spec?.shim).toBe(Shim.Host);
      expect(app.spec?.maxInstances).toBe(1_000_000);
      expect(app.spec?.delayRelease).toBe(60n);
      expect(app.spec?.workingDirectory).toBeUndefined();
      expect(app.spec?.labels).toEqual([]);
      expect(app.spec?.environments).toEqual([]);
      expect(app.status?.state).toBe(ApplicationState.Enabled);
    }
    const flmexec = byName.flmexec?.spec;
    expect(flmexec?.command).toBe(`\${FLAME_HOME}/bin/flmexec-service`);
    expect(flmexec?.description).toBe(
      "The Flame Executor application, which is used to run scripts.",
    );
    expect(flmexec?.schema?.output).toBe(
      '{"$schema":"http://json-schema.org/draft-07/schema#","type":"string","description":"The output of the script in UTF-8."}',
    );
    expect(JSON.parse(flmexec?.schema?.input ?? "")).toMatchObject({
      type: "object",
      required: ["language", "code"],
    });
    const flmping = byName.flmping?.spec;
    expect(flmping?.description).toBeUndefined();
    expect(flmping?.url).toBe(`file://\${FLAME_HOME}/bin/flmping-service`);
    // Present but empty.
    expect(flmping?.schema).toBeDefined();
    expect([flmping?.schema?.input, flmping?.schema?.output]).toEqual([undefined, undefined]);
    const flmrun = byName.flmrun?.spec;
    expect(flmrun?.command).toBe(`\${FLAME_HOME}/bin/uv`);
    expect(flmrun?.arguments).toEqual([
      "run",
      "--python",
      `python\${FLAME_PYTHON_VERSION}`,
      "python",
      "-m",
      "flamepy.runner.runpy",
    ]);
    expect(flmrun?.installer).toBe("python");
    expect(Object.keys(DEFAULT_APPLICATIONS).sort()).toEqual(["flmexec", "flmping", "flmrun"]);
  });

  it("fills in max_instances and delay_release, drops an empty working directory", async () => {
    await h.client.registerApplication({
      name: "pi",
      application: {
        description: "pi",
        workingDirectory: "",
        environments: [
          { name: "A", value: "1" },
          { name: "A", value: "2" },
        ],
      },
    });
    const app = await h.client.getApplication({ name: "pi" });
    expect(app.metadata).toMatchObject({ id: "pi", name: "pi" });
    expect(app.spec).toMatchObject({
      description: "pi",
      maxInstances: 1_000_000,
      delayRelease: 60n,
    });
    expect(app.spec?.workingDirectory).toBeUndefined();
    expect(app.spec?.environments.map((e) => [e.name, e.value])).toEqual([["A", "2"]]);
    await h.client.registerApplication({
      name: "given",
      application: { maxInstances: 3, delayRelease: 0n },
    });
    const given = await h.client.getApplication({ name: "given" });
    expect(given.spec).toMatchObject({ maxInstances: 3, delayRelease: 0n });
  });

  it("creation time: whole seconds on sqlite and fs, milliseconds on none", async () => {
    const before = BigInt(Date.now());
    await h.client.registerApplication({ name: "t", application: {} });
    const created = (await h.client.getApplication({ name: "t" })).status?.creationTime;
    expectStamp(storage, created, before);
  });

  it("a missing application spec is INVALID_ARGUMENT, in Flame's words", async () => {
    await expectCode(
      h.client.registerApplication({ name: "x" }),
      Code.InvalidArgument,
      "applilcation spec is missed",
    );
    await expectCode(
      h.client.updateApplication({ name: "flmping" }),
      Code.InvalidArgument,
      "applilcation spec is missed",
    );
  });

  it("refuses a schema that is not JSON or not a JSON Schema with INVALID_ARGUMENT", async () => {
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
    await expectCode(
      h.client.registerApplication({ name: "b1", application: { schema: { input: "" } } }),
      Code.InvalidArgument,
      "invalid input schema: EOF while parsing a value at line 1 column 0",
    );
    await expectCode(
      h.client.registerApplication({ name: "b1", application: { schema: { input: "{not" } } }),
      Code.InvalidArgument,
      "invalid input schema: ",
    );
    await expectCode(
      h.client.registerApplication({
        name: "b2",
        application: { schema: { output: JSON.stringify({ type: "no-such-type" }) } },
      }),
      Code.InvalidArgument,
      "invalid output schema: ",
    );
    await expectCode(
      h.client.updateApplication({
        name: "typed",
        application: { schema: { commonData: JSON.stringify({ minimum: "ten" }) } },
      }),
      Code.InvalidArgument,
      "invalid common data schema: ",
    );
    await expectCode(h.client.getApplication({ name: "b1" }), Code.NotFound);
  });

  it("refuses a relative working directory with INVALID_ARGUMENT", async () => {
    await expectCode(
      h.client.registerApplication({ name: "rel", application: { workingDirectory: "work/dir" } }),
      Code.InvalidArgument,
      "working_directory must be an absolute path, got: work/dir",
    );
    await expectCode(
      h.client.updateApplication({ name: "flmping", application: { workingDirectory: "x" } }),
      Code.InvalidArgument,
      "working_directory must be an absolute path, got: x",
    );
    const absolute = await h.client.registerApplication({
      name: "abs",
      application: { workingDirectory: "/srv/work" },
    });
    expect(absolute.returnCode).toBe(0);
  });

  it.each([
    ["", "application name cannot be empty"],
    ["a".repeat(254), "application name exceeds maximum length of 253 characters"],
    ["a..b", "application name contains invalid characters (path traversal): a..b"],
    ["a/b", "application name contains invalid characters (path traversal): a/b"],
    [".hidden", "application name cannot start with '.' or '-': .hidden"],
    ["-dash", "application name cannot start with '.' or '-': -dash"],
    [
      "sp ace",
      "application name contains invalid characters (only alphanumeric, '-', '_', '.' allowed): sp ace",
    ],
  ])("refuses the name %j in-band, on Register and Update", async (name, message) => {
    const registered = await h.client.registerApplication({ name, application: {} });
    expect(registered).toMatchObject({ returnCode: -1, message });
    const updated = await h.client.updateApplication({ name, application: {} });
    expect(updated).toMatchObject({ returnCode: -1, message });
  });

  it("accepts the longest and the most varied legal names", async () => {
    for (const name of ["a".repeat(253), "A-b_c.9"]) {
      expect((await h.client.registerApplication({ name, application: {} })).returnCode).toBe(0);
    }
  });

  it("UpdateApplication replaces the whole spec", async () => {
    await h.client.registerApplication({
      name: "u",
      application: { description: "first", command: "/bin/a", maxInstances: 2 },
    });
    const updated = await h.client.updateApplication({
      name: "u",
      application: { description: "changed" },
    });
    expect(updated.returnCode).toBe(0);
    const app = await h.client.getApplication({ name: "u" });
    expect(app.spec?.description).toBe("changed");
    expect(app.spec?.command).toBeUndefined();
    expect(app.spec?.maxInstances).toBe(1_000_000);
  });

  it("unregisters an application and drops its sessions", async () => {
    await h.client.registerApplication({ name: "gone", application: {} });
    await h.client.createSession({ sessionId: "s1", session: { application: "gone" } });
    await h.client.closeSession({ sessionId: "s1" });
    await h.client.createSession({ sessionId: "other", session: { application: "flmping" } });
    expect((await h.client.unregisterApplication({ name: "gone" })).returnCode).toBe(0);
    await expectCode(h.client.getApplication({ name: "gone" }), Code.NotFound);
    await expectCode(h.client.getSession({ sessionId: "s1" }), Code.NotFound, "s1");
    const { sessions } = await h.client.listSession({});
    expect(sessions.map((s) => s.metadata?.id)).toEqual(["other"]);
  });

  it("the defaults can be unregistered; reset() brings them back", async () => {
    expect((await h.client.unregisterApplication({ name: "flmping" })).returnCode).toBe(0);
    await expectCode(h.client.getApplication({ name: "flmping" }), Code.NotFound);
    h.emulator.reset();
    expect((await h.client.getApplication({ name: "flmping" })).metadata?.name).toBe("flmping");
  });
});

/** Each engine's own answers, from flame-as-deployed.md §4 and §6.2. */
const ENGINE_ANSWERS = {
  sqlite: {
    notFound: "application <ghost> not found",
    duplicate:
      "failed to register application: error returned from database: (code: 1555) UNIQUE constraint failed: applications.name",
    updateUnknown:
      "failed to update application: no rows returned by a query that expected to return at least one row",
    updateOpen: "1 open sessions in the application",
    unregisterOpen: "1 open sessions in the application",
    unregisterUnknown: undefined,
  },
  fs: {
    notFound: "Application ghost not found: No such file or directory (os error 2)",
    duplicate: "Application 'busy' already exists",
    updateUnknown: "Application ghost not found: No such file or directory (os error 2)",
    updateOpen: "Cannot update application 'busy': has open sessions",
    unregisterOpen: "Cannot unregister application 'busy': has open sessions",
    unregisterUnknown:
      "Failed to delete application 'ghost': No such file or directory (os error 2)",
  },
  none: {
    notFound: "application <ghost>",
    duplicate: undefined,
    updateUnknown: "application <ghost>",
    updateOpen: undefined,
    unregisterOpen: undefined,
    unregisterUnknown: undefined,
  },
} as const;

const inBand = (message: string | undefined) =>
  message === undefined ? { returnCode: 0 } : { returnCode: -1, message };

describe.each(EMULATOR_STORAGES)("application answers particular to %s", (storage) => {
  const answers = ENGINE_ANSWERS[storage];
  const h = useHarness({ storage }, async (h) => {
    await h.client.registerApplication({ name: "busy", application: { description: "v1" } });
    await h.client.createSession({ sessionId: "open", session: { application: "busy" } });
  });

  it("GetApplication on an unknown name", async () => {
    await expectCode(h.client.getApplication({ name: "ghost" }), Code.NotFound, answers.notFound);
  });

  it("RegisterApplication of a name already registered", async () => {
    const dup = await h.client.registerApplication({
      name: "busy",
      application: { labels: ["2"] },
    });
    expect(dup).toEqual(expect.objectContaining(inBand(answers.duplicate)));
    const app = await h.client.getApplication({ name: "busy" });
    // none overwrites; the others keep the first registration.
    expect(app.spec?.labels).toEqual(storage === "none" ? ["2"] : []);
  });

  it("UpdateApplication of an unknown name", async () => {
    const unknown = await h.client.updateApplication({ name: "ghost", application: {} });
    expect(unknown).toEqual(expect.objectContaining(inBand(answers.updateUnknown)));
  });

  it("UpdateApplication while a session is open", async () => {
    const update = await h.client.updateApplication({
      name: "busy",
      application: { description: "v2" },
    });
    expect(update).toEqual(expect.objectContaining(inBand(answers.updateOpen)));
    const app = await h.client.getApplication({ name: "busy" });
    expect(app.spec?.description).toBe(answers.updateOpen === undefined ? "v2" : "v1");
    // Once the session is closed every engine allows it.
    await h.client.closeSession({ sessionId: "open" });
    const later = await h.client.updateApplication({ name: "busy", application: {} });
    expect(later.returnCode).toBe(0);
  });

  it("UnregisterApplication while a session is open", async () => {
    const refused = await h.client.unregisterApplication({ name: "busy" });
    expect(refused).toEqual(expect.objectContaining(inBand(answers.unregisterOpen)));
    if (answers.unregisterOpen === undefined) {
      // none: allowed, and the open session went with it.
      await expectCode(h.client.getSession({ sessionId: "open" }), Code.NotFound);
    } else {
      expect((await h.client.getSession({ sessionId: "open" })).metadata?.id).toBe("open");
    }
  });

  it("UnregisterApplication of an unknown name", async () => {
    const unknown = await h.client.unregisterApplication({ name: "ghost" });
    expect(unknown).toEqual(expect.objectContaining(inBand(answers.unregisterUnknown)));
  });
});

describe("shim and image per engine", () => {
  it.each(EMULATOR_STORAGES)("%s", async (storage) => {
    const h = await startHarness({ storage });
    try {
      await h.client.registerApplication({
        name: "w",
        application: { shim: Shim.Wasm, image: "img:1" },
      });
      const registered = (await h.client.getApplication({ name: "w" })).spec;
      // sqlite stores neither: they read back as Host and absent.
      expect(registered?.shim).toBe(storage === "sqlite" ? Shim.Host : Shim.Wasm);
      expect(registered?.image).toBe(storage === "sqlite" ? undefined : "img:1");
      await h.client.updateApplication({ name: "w", application: { shim: Shim.Host } });
      // fs's update rewrites every field but the shim.
      const updated = (await h.client.getApplication({ name: "w" })).spec;
      expect(updated?.shim).toBe(storage === "fs" ? Shim.Wasm : Shim.Host);
    } finally {
      await h.emulator.close();
    }
  });
});

describe("applications option", () => {
  it("registers the applications given in options at start and after reset", async () => {
    const extra = await startHarness({ applications: { pi: { description: "pi app" } } });
    try {
      const pi = await extra.client.getApplication({ name: "pi" });
      expect(pi.spec).toMatchObject({ description: "pi app", maxInstances: 1_000_000 });
      extra.emulator.reset();
      expect((await extra.client.listApplication({})).applications).toHaveLength(4);
    } finally {
      await extra.emulator.close();
    }
  });
});
