// Temporary YAML files for the loader tests, and the invalid-config error
// every bad one must give.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FlameError } from "@flame-ts/core";
import { afterAll, expect } from "vitest";

/** A temporary folder, removed after the file's tests, and a writer of numbered files in it. */
export function yamlFiles(prefix: string): { dir: string; file: (text: string) => string } {
  const dir = mkdtempSync(join(tmpdir(), `flame-${prefix}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  return {
    dir,
    file(text: string): string {
      const path = join(dir, `${prefix}-${++n}.yaml`);
      writeFileSync(path, text);
      return path;
    },
  };
}

/** Runs `fn`, which must throw a FlameError of kind "invalid-config", and returns it. */
export function configError(fn: () => unknown): FlameError {
  try {
    fn();
  } catch (err) {
    expect(FlameError.is(err, "invalid-config")).toBe(true);
    return err as FlameError;
  }
  throw new Error("expected an invalid-config FlameError");
}
