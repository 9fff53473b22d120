import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  type Application,
  type ApplicationSchema$,
  type ApplicationSpec,
  ApplicationSpecSchema,
  ApplicationState,
  Shim,
} from "@flame-ts/core/gen";
import { Ajv } from "ajv";
import { invalidConfig } from "./errors.js";

export type ApplicationSpecInit = MessageInitShape<typeof ApplicationSpecSchema>;

export interface ApplicationRecord {
  name: string;
  spec: ApplicationSpec;
  state: ApplicationState;
  creationTime: bigint;
}

/** Flame fills these in when a spec leaves them out (`DEFAULT_MAX_INSTANCES`, `DEFAULT_DELAY_RELEASE`). */
export const DEFAULT_MAX_INSTANCES = 1_000_000;
export const DEFAULT_DELAY_RELEASE_SECONDS = 60n;

// flmexec's schemas, serialised as Flame's serde_json writes them (keys in source order).
const scriptInputSchema = JSON.stringify({
  $schema: "http://json-schema.org/draft-07/schema#",
  type: "object",
  properties: {
    language: { type: "string", description: "The language of the script, e.g. python" },
    code: {
      type: "string",
      description: "The code of the script to run, e.g. print('Hello, world!')",
    },
    input: {
      type: "array",
      items: { type: "integer", description: "The input to the script in bytes, e.g. [0x1, 0x2]" },
    },
  },
  required: ["language", "code"],
});
const scriptOutputSchema = JSON.stringify({
  $schema: "http://json-schema.org/draft-07/schema#",
  type: "string",
  description: "The output of the script in UTF-8.",
});

// Literal in the stored spec: Flame's executor expands them.
// biome-ignore lint/suspicious/noTemplateCurlyInString: Flame's placeholder, not ours
const FLAME_HOME = "${FLAME_HOME}";
// biome-ignore lint/suspicious/noTemplateCurlyInString: Flame's placeholder, not ours
const FLAME_PYTHON_VERSION = "${FLAME_PYTHON_VERSION}";

/**
 * The three applications every Flame cluster starts with, as Flame registers
 * them (`${FLAME_HOME}` and `${FLAME_PYTHON_VERSION}` stay literal: the
 * executor expands them).
 */
export const DEFAULT_APPLICATIONS: Record<string, ApplicationSpecInit> = {
  flmexec: {
    shim: Shim.Host,
    description: "The Flame Executor application, which is used to run scripts.",
    command: `${FLAME_HOME}/bin/flmexec-service`,
    schema: { input: scriptInputSchema, output: scriptOutputSchema },
  },
  flmping: {
    shim: Shim.Host,
    command: `${FLAME_HOME}/bin/flmping-service`,
    url: `file://${FLAME_HOME}/bin/flmping-service`,
    schema: {},
  },
  flmrun: {
    shim: Shim.Host,
    description: "The Flame Runner application for executing customized Python applications.",
    command: `${FLAME_HOME}/bin/uv`,
    arguments: [
      "run",
      "--python",
      `python${FLAME_PYTHON_VERSION}`,
      "python",
      "-m",
      "flamepy.runner.runpy",
    ],
    installer: "python",
    schema: {},
  },
};

const SCHEMA_FIELDS = [
  ["input", "input"],
  ["output", "output"],
  ["commonData", "common data"],
] as const;

/** serde_json's words for the one parse error JavaScript words differently enough to matter. */
const parseError = (text: string, error: unknown) =>
  text.trim() === ""
    ? `EOF while parsing a value at line 1 column ${text.length}`
    : (error as Error).message;

/**
 * Flame's checks before an application reaches storage, each a gRPC
 * INVALID_ARGUMENT: every schema must be JSON and a JSON Schema; a non-empty
 * working directory must be absolute.
 */
export const checkApplicationSpec = (spec: ApplicationSpec): void => {
  const schema = spec.schema;
  if (schema) {
    // A fresh instance per check: Ajv caches by $id and would refuse a re-registration.
    const ajv = new Ajv({ strict: false });
    for (const [field, words] of SCHEMA_FIELDS) {
      const text = schema[field];
      if (text === undefined) continue;
      const problem = schemaProblem(ajv, text);
      if (problem) throw invalidConfig(`invalid ${words} schema: ${problem}`);
    }
  }
  const wd = spec.workingDirectory;
  if (wd !== undefined && wd !== "" && !wd.startsWith("/")) {
    throw invalidConfig(`working_directory must be an absolute path, got: ${wd}`);
  }
};

const schemaProblem = (ajv: Ajv, text: string): string | undefined => {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    return parseError(text, error);
  }
  if (typeof document !== "object" && typeof document !== "boolean") {
    return `${JSON.stringify(document)} is not of types "boolean", "object"`;
  }
  try {
    if (!ajv.validateSchema(document as object)) return ajv.errorsText(ajv.errors);
    ajv.compile(document as object);
  } catch (error) {
    return (error as Error).message;
  }
  return undefined;
};

/**
 * The spec as Flame keeps it: `max_instances` and `delay_release` filled in,
 * an empty working directory dropped, environments collapsed by name (the
 * last value wins).
 */
export const withFlameDefaults = (
  given: ApplicationSpecInit | ApplicationSpec,
): ApplicationSpec => {
  // A fresh message: never share the caller's (or a request's) objects.
  const { $typeName: _, ...spec } = given as ApplicationSpec;
  const environments = new Map<string, string>();
  for (const env of spec.environments ?? []) environments.set(env.name ?? "", env.value ?? "");
  return create(ApplicationSpecSchema, {
    ...spec,
    workingDirectory: spec.workingDirectory === "" ? undefined : spec.workingDirectory,
    environments: [...environments].map(([name, value]) => ({ name, value })),
    maxInstances: spec.maxInstances ?? DEFAULT_MAX_INSTANCES,
    delayRelease: spec.delayRelease ?? DEFAULT_DELAY_RELEASE_SECONDS,
  });
};

export const newApplicationRecord = (
  name: string,
  spec: ApplicationSpec,
  creationTime: bigint,
): ApplicationRecord => ({ name, spec, state: ApplicationState.Enabled, creationTime });

export const toApplication = (
  app: ApplicationRecord,
): MessageInitShape<typeof ApplicationSchema$> => ({
  metadata: { id: app.name, name: app.name },
  spec: app.spec,
  status: { state: app.state, creationTime: app.creationTime },
});

export type { Application };
