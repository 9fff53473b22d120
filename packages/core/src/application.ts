import type {
  Application as ApplicationMessage,
  ApplicationSpec,
  ApplicationState,
  Shim,
} from "./gen/flame/v1/types_pb.js";
import { msToDate } from "./task.js";

/** JSON Schema documents for an application's input, output and common data. */
export interface ApplicationSchemaDocuments {
  /** A JSON Schema as text, or as an object (sent as JSON text). */
  input?: string | object;
  output?: string | object;
  commonData?: string | object;
}

/** What `registerApplication`/`updateApplication` send. Everything is optional. */
export interface ApplicationAttributes {
  shim?: Shim;
  description?: string;
  labels?: string[];
  image?: string;
  command?: string;
  arguments?: string[];
  environments?: Record<string, string>;
  /** Must be absolute when given (the server checks). */
  workingDirectory?: string;
  maxInstances?: number;
  /** Seconds an idle executor is kept before release. */
  delayRelease?: number;
  schema?: ApplicationSchemaDocuments;
  url?: string;
  installer?: string;
}

/** An application as plain data. */
export interface Application {
  name: string;
  state: ApplicationState;
  creationTime: Date;
  shim: Shim;
  description?: string;
  labels: string[];
  image?: string;
  command?: string;
  arguments: string[];
  environments: Record<string, string>;
  workingDirectory?: string;
  maxInstances?: number;
  /** Seconds. */
  delayRelease?: number;
  schema?: { input?: string; output?: string; commonData?: string };
  url?: string;
  installer?: string;
}

const schemaText = (doc: string | object) => (typeof doc === "string" ? doc : JSON.stringify(doc));

// The optional fields that are copied as they are, both ways.
const plainKeys = [
  "description",
  "image",
  "command",
  "workingDirectory",
  "maxInstances",
  "url",
  "installer",
] as const;
const schemaKeys = ["input", "output", "commonData"] as const;

/**
 * Copies `keys` that are not undefined (optional fields stay absent, not
 * `undefined`) into `target`, and returns it.
 */
function copyDefined<K extends string, T extends Partial<Record<K, unknown>>>(
  target: T,
  source: Partial<Record<K, unknown>>,
  keys: readonly K[],
  map: (value: never) => unknown = (value) => value,
): T {
  for (const key of keys) {
    if (source[key] !== undefined) (target as Record<K, unknown>)[key] = map(source[key] as never);
  }
  return target;
}

/** The init object for `ApplicationSpecSchema`. */
export function toApplicationSpec(attrs: ApplicationAttributes) {
  const spec: {
    shim: Shim;
    labels: string[];
    arguments: string[];
    environments: { name: string; value: string }[];
    description?: string;
    image?: string;
    command?: string;
    workingDirectory?: string;
    maxInstances?: number;
    delayRelease?: bigint;
    schema?: { input?: string; output?: string; commonData?: string };
    url?: string;
    installer?: string;
  } = {
    // Shim.Host: a literal, since naming an enum member would put the whole
    // enum object in every browser bundle.
    shim: attrs.shim ?? (0 as Shim),
    labels: attrs.labels ?? [],
    arguments: attrs.arguments ?? [],
    environments: Object.entries(attrs.environments ?? {}).map(([name, value]) => ({
      name,
      value,
    })),
  };
  copyDefined(spec, attrs, plainKeys);
  if (attrs.delayRelease !== undefined) spec.delayRelease = BigInt(Math.trunc(attrs.delayRelease));
  if (attrs.schema !== undefined) {
    spec.schema = copyDefined({}, attrs.schema, schemaKeys, schemaText);
  }
  return spec;
}

export function toApplication(message: ApplicationMessage): Application {
  const spec: Partial<ApplicationSpec> = message.spec ?? {};
  const app: Application = {
    name: message.metadata?.name ?? "",
    state: message.status?.state ?? (0 as ApplicationState), // Enabled
    creationTime: msToDate(message.status?.creationTime ?? 0n),
    shim: spec.shim ?? (0 as Shim), // Host
    labels: [...(spec.labels ?? [])],
    arguments: [...(spec.arguments ?? [])],
    environments: Object.fromEntries((spec.environments ?? []).map((e) => [e.name, e.value])),
  };
  copyDefined(app, spec, plainKeys);
  if (spec.delayRelease !== undefined) app.delayRelease = Number(spec.delayRelease);
  if (spec.schema !== undefined) app.schema = copyDefined({}, spec.schema, schemaKeys);
  return app;
}
