import { join } from "node:path";
import { Shim } from "@flame-ts/core";
import { describe, expect, test } from "vitest";
import { loadApplicationSpec, loadApplicationSpecs } from "../src/application-spec.js";
import { configError, yamlFiles } from "./helpers/yaml-files.js";

const { dir, file } = yamlFiles("spec");

describe("loadApplicationSpec", () => {
  test("reads every field flmctl users write", () => {
    const path = file(`
metadata:
  name: my-app
spec:
  shim: Host
  description: "An app"
  labels: [a, b]
  image: registry/my-app:1
  command: /usr/bin/my-app
  arguments: [--x, 8080, true]
  environments:
    KEY: value
    PORT: 8080
  working_directory: /opt/my-app
  max_instances: 10
  delay_release: 60
  schema:
    input: '{"type": "object"}'
    output:
      type: string
    common_data: '{}'
  url: file:///opt/my-app
  installer: pip
`);
    expect(loadApplicationSpec(path)).toEqual({
      name: "my-app",
      attributes: {
        shim: Shim.Host,
        description: "An app",
        labels: ["a", "b"],
        image: "registry/my-app:1",
        command: "/usr/bin/my-app",
        arguments: ["--x", "8080", "true"],
        environments: { KEY: "value", PORT: "8080" },
        workingDirectory: "/opt/my-app",
        maxInstances: 10,
        delayRelease: 60,
        schema: { input: '{"type": "object"}', output: '{"type":"string"}', commonData: "{}" },
        url: "file:///opt/my-app",
        installer: "pip",
      },
    });
  });

  test("accepts environments as a list of {name, value} and lower-case shims", () => {
    const path = file(`
metadata: { name: listy }
spec:
  shim: wasm
  environments:
    - name: A
      value: "1"
    - name: B
      value: two
`);
    expect(loadApplicationSpec(path)).toEqual({
      name: "listy",
      attributes: { shim: Shim.Wasm, environments: { A: "1", B: "two" } },
    });
  });

  test("a manifest with only a name and no spec is fine", () => {
    expect(loadApplicationSpec(file("metadata:\n  name: bare\n"))).toEqual({
      name: "bare",
      attributes: {},
    });
  });

  test("several manifests: loadApplicationSpecs reads them all, loadApplicationSpec refuses", () => {
    const path = file("metadata: {name: a}\nspec: {command: /a}\n---\nmetadata: {name: b}\n");
    expect(loadApplicationSpecs(path).map((s) => s.name)).toEqual(["a", "b"]);
    expect(configError(() => loadApplicationSpec(path)).message).toMatch(/holds 2 manifests/);
  });

  test.each([
    ["spec: {command: /x}\n", /metadata must be a mapping/],
    ["metadata: {name: ''}\n", /metadata\.name must be a non-empty string/],
    ["metadata: {name: x}\nspec: {comand: /x}\n", /unknown field spec\.comand; known fields: shim/],
    ["metadata: {name: x}\nspec: {shim: Docker}\n", /spec\.shim must be Host or Wasm/],
    ["metadata: {name: x}\nspec: {labels: a}\n", /spec\.labels must be a list of strings/],
    ["metadata: {name: x}\nspec: {arguments: [[1]]}\n", /spec\.arguments\[0\] must be a string/],
    ["metadata: {name: x}\nspec: {command: [a]}\n", /spec\.command must be a string, found a list/],
    [
      "metadata: {name: x}\nspec: {max_instances: -1}\n",
      /spec\.max_instances must be a whole number/,
    ],
    [
      "metadata: {name: x}\nspec: {delay_release: 1.5}\n",
      /spec\.delay_release must be a whole number/,
    ],
    ["metadata: {name: x}\nspec: {environments: [{value: 1}]}\n", /spec\.environments\[0\]/],
    [
      "metadata: {name: x}\nspec: {environments: {A: [1]}}\n",
      /spec\.environments\.A must be a string/,
    ],
    ["metadata: {name: x}\nspec: {environments: abc}\n", /spec\.environments must be a mapping/],
    [
      "metadata: {name: x}\nspec: {schema: {input: '{nope'}}\n",
      /spec\.schema\.input is not valid JSON/,
    ],
    ["metadata: {name: x}\nspec: {schema: {inputs: '{}'}}\n", /unknown field spec\.schema\.inputs/],
    ["metadata: {name: x}\nspec: [1]\n", /spec must be a mapping/],
    ["metadata: {name: x\n", /not valid YAML: .*line \d+, column \d+/],
    ["# nothing here\n", /is empty/],
  ])("a bad spec names the file and the field: %j", (text, message) => {
    const path = file(text);
    const err = configError(() => loadApplicationSpec(path));
    expect(err.message).toMatch(message);
    expect(err.message).toContain(path);
  });

  test("an unreadable file names the path and the OS error", () => {
    const path = join(dir, "nope.yaml");
    const err = configError(() => loadApplicationSpec(path));
    expect(err.message).toContain(path);
    expect(err.message).toContain("ENOENT");
  });
});
