import { describe, expect, it } from "vitest";
import { DEFAULTS, parseOptions, UsageError } from "../src/options.js";

describe("pi options", () => {
  it("has the documented defaults", () => {
    expect(parseOptions([])).toEqual({
      app: "pi",
      taskNum: 10,
      taskInput: 10_000,
      emulator: false,
      help: false,
    });
    expect(DEFAULTS).toEqual({ app: "pi", taskNum: 10, taskInput: 10_000 });
  });

  it("reads every option", () => {
    expect(
      parseOptions([
        "--app",
        "pi-rs",
        "--task-num",
        "1000",
        "--task-input=250",
        "--endpoint",
        "http://flame:8080",
      ]),
    ).toEqual({
      app: "pi-rs",
      taskNum: 1000,
      taskInput: 250,
      endpoint: "http://flame:8080",
      emulator: false,
      help: false,
    });
    expect(parseOptions(["--emulator"]).emulator).toBe(true);
    expect(parseOptions(["-h"]).help).toBe(true);
  });

  it.each(["--task-num", "--task-input"])(
    "rejects bad values of %s, naming option and value",
    (option) => {
      for (const value of [
        "0",
        "-1",
        "abc",
        "1.5",
        "1e3",
        "",
        " 7",
        "+3",
        "0x10",
        "99999999999999999999",
      ]) {
        let error: unknown;
        try {
          parseOptions([`${option}=${value}`]);
        } catch (e) {
          error = e;
        }
        expect(error, `${option}=${value}`).toBeInstanceOf(UsageError);
        expect((error as Error).message).toBe(
          `${option} must be a positive integer, got ${JSON.stringify(value)}`,
        );
      }
    },
  );

  it("rejects a negative number given as a separate argument, naming the option", () => {
    expect(() => parseOptions(["--task-num", "-1"])).toThrow(UsageError);
    expect(() => parseOptions(["--task-input", "-1"])).toThrow(
      '--task-input must be a positive integer, got "-1"',
    );
    expect(() => parseOptions(["--task-num", "-0.5"])).toThrow(
      '--task-num must be a positive integer, got "-0.5"',
    );
  });

  it("rejects unknown options, missing values, positionals and conflicts", () => {
    expect(() => parseOptions(["--tasks", "3"])).toThrow(UsageError);
    expect(() => parseOptions(["--task-num"])).toThrow(/--task-num/);
    expect(() => parseOptions(["extra"])).toThrow(UsageError);
    expect(() => parseOptions(["--app", ""])).toThrow(/--app must not be empty/);
    expect(() => parseOptions(["--emulator", "--endpoint", "http://x:8080"])).toThrow(
      /--emulator and --endpoint/,
    );
  });

  it("rejects a product of tasks and samples too large to count exactly", () => {
    expect(() => parseOptions(["--task-num", "100000000", "--task-input", "1000000000"])).toThrow(
      /too large/,
    );
  });
});
