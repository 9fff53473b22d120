import type {
  Application as ApplicationMessage,
  ApplicationSpec,
} from "./gen/flame/v1/types_pb.js";
import { ApplicationState, Shim } from "./gen/flame/v1/types_pb.js";
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
    shim: attrs.shim ?? Shim.Host,
    labels: attrs.labels ?? [],
    arguments: attrs.arguments ?? [],
    environments: Object.entries(attrs.environments ?? {}).map(([name, value]) => ({
      name,
      value,
    })),
  };
  if (attrs.description !== undefined) spec.description = attrs.description;
  if (attrs.image !== undefined) spec.image = attrs.image;
  if (attrs.command !== undefined) spec.command = attrs.command;
  if (attrs.workingDirectory !== undefined) spec.workingDirectory = attrs.workingDirectory;
  if (attrs.maxInstances !== undefined) spec.maxInstances = attrs.maxInstances;
  if (attrs.delayRelease !== undefined) spec.delayRelease = BigInt(Math.trunc(attrs.delayRelease));
  if (attrs.url !== undefined) spec.url = attrs.url;
  if (attrs.installer !== undefined) spec.installer = attrs.installer;
  if (attrs.schema !== undefined) {
    const schema: { input?: string; output?: string; commonData?: string } = {};
    if (attrs.schema.input !== undefined) schema.input = schemaText(attrs.schema.input);
    if (attrs.schema.output !== undefined) schema.output = schemaText(attrs.schema.output);
    if (attrs.schema.commonData !== undefined) {
      schema.commonData = schemaText(attrs.schema.commonData);
    }
    spec.schema = schema;
  }
  return spec;
}

export function toApplication(message: ApplicationMessage): Application {
  const spec: Partial<ApplicationSpec> = message.spec ?? {};
  const app: Application = {
    name: message.metadata?.name ?? "",
    state: message.status?.state ?? ApplicationState.Enabled,
    creationTime: msToDate(message.status?.creationTime ?? 0n),
    shim: spec.shim ?? Shim.Host,
    labels: [...(spec.labels ?? [])],
    arguments: [...(spec.arguments ?? [])],
    environments: Object.fromEntries((spec.environments ?? []).map((e) => [e.name, e.value])),
  };
  if (spec.description !== undefined) app.description = spec.description;
  if (spec.image !== undefined) app.image = spec.image;
  if (spec.command !== undefined) app.command = spec.command;
  if (spec.workingDirectory !== undefined) app.workingDirectory = spec.workingDirectory;
  if (spec.maxInstances !== undefined) app.maxInstances = spec.maxInstances;
  if (spec.delayRelease !== undefined) app.delayRelease = Number(spec.delayRelease);
  if (spec.url !== undefined) app.url = spec.url;
  if (spec.installer !== undefined) app.installer = spec.installer;
  if (spec.schema !== undefined) {
    const s = spec.schema;
    const schema: { input?: string; output?: string; commonData?: string } = {};
    if (s.input !== undefined) schema.input = s.input;
    if (s.output !== undefined) schema.output = s.output;
    if (s.commonData !== undefined) schema.commonData = s.commonData;
    app.schema = schema;
  }
  return app;
}
