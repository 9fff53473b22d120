import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  type Application,
  type ApplicationSpec,
  ApplicationSpecSchema,
  ApplicationState,
  Shim,
} from "@flame-ts/core/gen";
import { Ajv } from "ajv";
import { nowMs } from "./clock.js";

export type ApplicationSpecInit = MessageInitShape<typeof ApplicationSpecSchema>;

export interface ApplicationRecord {
  name: string;
  spec: ApplicationSpec;
  state: ApplicationState;
  creationTime: bigint;
}

/** The three applications every Flame cluster starts with. */
export const DEFAULT_APPLICATIONS: Record<string, ApplicationSpecInit> = {
  flmexec: {
    shim: Shim.Host,
    description: "The Flame executor service: runs a script or command per task.",
    command: "/usr/local/flame/bin/flmexec-service",
    workingDirectory: "/tmp",
  },
  flmping: {
    shim: Shim.Host,
    description: "The Flame ping service: reports where and how long each task ran.",
    command: "/usr/local/flame/bin/flmping-service",
    workingDirectory: "/tmp",
  },
  flmrun: {
    shim: Shim.Host,
    description: "The Flame runner service: runs Python functions packaged with the session.",
    command: "/usr/bin/uv",
    arguments: ["run", "-m", "flamepy.runner"],
    workingDirectory: "/tmp",
  },
};

/** Why a spec is refused, or undefined when it is acceptable. */
export const checkApplicationSpec = (spec: ApplicationSpec): string | undefined => {
  const wd = spec.workingDirectory;
  if (wd !== undefined && wd !== "" && !wd.startsWith("/")) {
    return `working directory <${wd}> must be an absolute path`;
  }
  const schema = spec.schema;
  if (schema) {
    // A fresh instance per check: Ajv caches by $id and would refuse a re-registration.
    const ajv = new Ajv({ strict: false });
    for (const field of ["input", "output", "common_data"] as const) {
      const text = field === "common_data" ? schema.commonData : schema[field];
      if (text === undefined) continue;
      let document: unknown;
      try {
        document = JSON.parse(text);
      } catch (error) {
        return `invalid ${field} schema: ${(error as Error).message}`;
      }
      if (typeof document !== "object" && typeof document !== "boolean") {
        return `invalid ${field} schema: not a JSON Schema document`;
      }
      try {
        if (!ajv.validateSchema(document as object)) {
          return `invalid ${field} schema: ${ajv.errorsText(ajv.errors)}`;
        }
        ajv.compile(document as object);
      } catch (error) {
        return `invalid ${field} schema: ${(error as Error).message}`;
      }
    }
  }
  return undefined;
};

export const newApplicationRecord = (name: string, spec: ApplicationSpec): ApplicationRecord => ({
  name,
  spec,
  state: ApplicationState.Enabled,
  creationTime: nowMs(),
});

export const toApplication = (
  app: ApplicationRecord,
): MessageInitShape<typeof import("@flame-ts/core/gen").ApplicationSchema$> => ({
  metadata: { id: app.name, name: app.name },
  spec: app.spec,
  status: { state: app.state, creationTime: app.creationTime },
});

export const specFrom = (init: ApplicationSpecInit): ApplicationSpec =>
  create(ApplicationSpecSchema, init);

export type { Application };
