import { type ApplicationAttributes, Shim } from "@flame-ts/core";
import { configError } from "./config-error.js";
import { isMapping, readYamlDocuments, yamlType } from "./yaml-file.js";

/** An application manifest read from YAML: its name and what to register. */
export interface ApplicationSpecFile {
  /** `metadata.name`. */
  name: string;
  /** `spec`, ready for `connection.registerApplication(name, attributes)`. */
  attributes: ApplicationAttributes;
}

const specFields = [
  "shim",
  "description",
  "labels",
  "image",
  "command",
  "arguments",
  "environments",
  "working_directory",
  "max_instances",
  "delay_release",
  "schema",
  "url",
  "installer",
] as const;

const schemaFields = ["input", "output", "common_data"] as const;

/**
 * Load one application manifest in the shape flmctl users write:
 *
 * ```yaml
 * metadata:
 *   name: my-app
 * spec:
 *   shim: Host            # or host, Wasm, wasm
 *   command: /usr/bin/my-app
 *   arguments: [--x]
 *   environments:         # a map, or a list of {name, value}
 *     KEY: value
 *   working_directory: /opt/my-app
 *   max_instances: 10
 *   delay_release: 60     # seconds
 *   schema:
 *     input: '{"type": "object"}'   # JSON Schema as text, or as a YAML mapping
 * ```
 *
 * Unknown keys under `spec` are rejected, so a typo (`comand:`) is caught
 * instead of silently dropped. Synchronous, like {@link loadFlameContext}.
 *
 * @throws FlameError of kind `"invalid-config"` naming the file and the field
 *   for an unreadable file, bad YAML, a missing name or a field of the wrong
 *   type; or when the file holds several manifests (use
 *   {@link loadApplicationSpecs}).
 */
export function loadApplicationSpec(path: string): ApplicationSpecFile {
  const specs = loadApplicationSpecs(path);
  if (specs.length !== 1) {
    throw configError(
      `Application spec file "${path}" holds ${specs.length} manifests; ` +
        "loadApplicationSpec expects exactly one (use loadApplicationSpecs for several)",
    );
  }
  return specs[0] as ApplicationSpecFile;
}

/**
 * Load every application manifest of a YAML file (documents separated by
 * `---`), each checked as in {@link loadApplicationSpec}. Empty documents are
 * skipped; a file with none is an error.
 */
export function loadApplicationSpecs(path: string): ApplicationSpecFile[] {
  const docs = readYamlDocuments(path, "application spec file").filter(
    (doc) => doc !== null && doc !== undefined,
  );
  if (docs.length === 0) {
    throw configError(`Application spec file "${path}" is empty: expected metadata.name and spec`);
  }
  return docs.map((doc, i) =>
    parseApplicationManifest(doc, docs.length > 1 ? `${path}#${i + 1}` : path),
  );
}

/**
 * Check one parsed manifest (`{ metadata: { name }, spec: {...} }`) and turn
 * it into {@link ApplicationSpecFile}. `source` names it in errors.
 */
export function parseApplicationManifest(
  doc: unknown,
  source = "application spec",
): ApplicationSpecFile {
  const fail = (message: string) => configError(`Application spec "${source}": ${message}`);
  if (!isMapping(doc)) {
    throw fail(`expected a mapping with metadata and spec, found ${yamlType(doc)}`);
  }
  const metadata = doc.metadata;
  if (!isMapping(metadata)) {
    throw fail(`metadata must be a mapping with a name, found ${yamlType(metadata)}`);
  }
  const name = metadata.name;
  if (typeof name !== "string" || name.trim() === "") {
    throw fail(`metadata.name must be a non-empty string, found ${yamlType(name)}`);
  }
  const spec = doc.spec ?? {};
  if (!isMapping(spec)) {
    throw fail(`spec must be a mapping, found ${yamlType(spec)}`);
  }
  for (const key of Object.keys(spec)) {
    if (!(specFields as readonly string[]).includes(key)) {
      throw fail(`unknown field spec.${key}; known fields: ${specFields.join(", ")}`);
    }
  }

  const str = (key: string): string | undefined => {
    const value = spec[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "string")
      throw fail(`spec.${key} must be a string, found ${yamlType(value)}`);
    return value;
  };
  const strings = (key: string): string[] | undefined => {
    const value = spec[key];
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value))
      throw fail(`spec.${key} must be a list of strings, found ${yamlType(value)}`);
    return value.map((item, i) => {
      if (typeof item === "string") return item;
      // YAML reads `- 8080` or `- true` as non-strings; a command line wants text.
      if (typeof item === "number" || typeof item === "boolean") return String(item);
      throw fail(`spec.${key}[${i}] must be a string, found ${yamlType(item)}`);
    });
  };
  const integer = (key: string, max: number): number | undefined => {
    const value = spec[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
      throw fail(`spec.${key} must be a whole number from 0 to ${max}, found ${yamlType(value)}`);
    }
    return value;
  };

  const attributes: ApplicationAttributes = {};
  const shim = parseShim(spec.shim, fail);
  if (shim !== undefined) attributes.shim = shim;
  const description = str("description");
  if (description !== undefined) attributes.description = description;
  const labels = strings("labels");
  if (labels !== undefined) attributes.labels = labels;
  const image = str("image");
  if (image !== undefined) attributes.image = image;
  const command = str("command");
  if (command !== undefined) attributes.command = command;
  const args = strings("arguments");
  if (args !== undefined) attributes.arguments = args;
  const environments = parseEnvironments(spec.environments, fail);
  if (environments !== undefined) attributes.environments = environments;
  const workingDirectory = str("working_directory");
  if (workingDirectory !== undefined) attributes.workingDirectory = workingDirectory;
  const maxInstances = integer("max_instances", 0xffff_ffff);
  if (maxInstances !== undefined) attributes.maxInstances = maxInstances;
  const delayRelease = integer("delay_release", Number.MAX_SAFE_INTEGER);
  if (delayRelease !== undefined) attributes.delayRelease = delayRelease;
  const schema = parseSchema(spec.schema, fail);
  if (schema !== undefined) attributes.schema = schema;
  const url = str("url");
  if (url !== undefined) attributes.url = url;
  const installer = str("installer");
  if (installer !== undefined) attributes.installer = installer;
  return { name, attributes };
}

type Fail = (message: string) => Error;

function parseShim(value: unknown, fail: Fail): Shim | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") {
    // flmctl accepts both spellings.
    if (value === "Host" || value === "host") return Shim.Host;
    if (value === "Wasm" || value === "wasm" || value === "WASM") return Shim.Wasm;
  }
  throw fail(`spec.shim must be Host or Wasm, found ${yamlType(value)}`);
}

function parseEnvironments(value: unknown, fail: Fail): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  const scalar = (v: unknown, where: string): string => {
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    if (v === null) return "";
    throw fail(`${where} must be a string, found ${yamlType(v)}`);
  };
  const result: Record<string, string> = {};
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      if (!isMapping(item) || typeof item.name !== "string" || item.name === "") {
        throw fail(`spec.environments[${i}] must be a mapping with a name and a value`);
      }
      result[item.name] = scalar(item.value, `spec.environments[${i}].value`);
    });
    return result;
  }
  if (isMapping(value)) {
    for (const [key, v] of Object.entries(value)) {
      result[key] = scalar(v, `spec.environments.${key}`);
    }
    return result;
  }
  throw fail(
    `spec.environments must be a mapping of NAME: value or a list of {name, value}, found ${yamlType(value)}`,
  );
}

function parseSchema(value: unknown, fail: Fail): ApplicationAttributes["schema"] {
  if (value === undefined || value === null) return undefined;
  if (!isMapping(value)) {
    throw fail(
      `spec.schema must be a mapping with input, output, common_data; found ${yamlType(value)}`,
    );
  }
  const schema: NonNullable<ApplicationAttributes["schema"]> = {};
  for (const key of Object.keys(value)) {
    if (!(schemaFields as readonly string[]).includes(key)) {
      throw fail(`unknown field spec.schema.${key}; known fields: ${schemaFields.join(", ")}`);
    }
  }
  for (const key of schemaFields) {
    const doc = value[key];
    if (doc === undefined || doc === null) continue;
    let text: string;
    if (typeof doc === "string") {
      // The server rejects a schema that is not JSON; say which field here.
      try {
        JSON.parse(doc);
      } catch (err) {
        throw fail(`spec.schema.${key} is not valid JSON: ${(err as Error).message}`);
      }
      text = doc;
    } else if (isMapping(doc)) {
      // A schema written as YAML is sent as its JSON text.
      text = JSON.stringify(doc);
    } else {
      throw fail(
        `spec.schema.${key} must be JSON Schema text or a mapping, found ${yamlType(doc)}`,
      );
    }
    if (key === "common_data") schema.commonData = text;
    else schema[key] = text;
  }
  return schema;
}
