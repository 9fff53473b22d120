import type { Application, ApplicationAttributes } from "./application.js";
import { toApplication, toApplicationSpec } from "./application.js";
import type { CallOptions } from "./call-options.js";
import type { Channel } from "./channel.js";
import { resultError } from "./errors.js";
import {
  RegisterApplicationRequestSchema,
  UpdateApplicationRequestSchema,
} from "./gen/flame/v1/frontend_pb.js";
import type { Result } from "./gen/flame/v1/types_pb.js";
import { sortByCreation } from "./internal/list-order.js";
import { checkRequestSize } from "./internal/request-size.js";
import type { WireCallOptions } from "./internal/rpc.js";

/**
 * Registers an application. Flame reports failure in-band; it is thrown
 * here as FlameError: a name taken is "already-exists" (the none engine
 * overwrites instead).
 */
export async function registerApplication(
  channel: Channel,
  name: string,
  attrs: ApplicationAttributes = {},
  options?: CallOptions,
): Promise<void> {
  await sendSpec(channel, "RegisterApplication", name, attrs, options);
}

/**
 * Replaces an application's spec (fields left out return to their
 * defaults). In-band failures are thrown as FlameError: an unknown name is
 * "not-found"; sqlite and fs refuse while the application has open
 * sessions ("invalid-state").
 */
export async function updateApplication(
  channel: Channel,
  name: string,
  attrs: ApplicationAttributes = {},
  options?: CallOptions,
): Promise<void> {
  await sendSpec(channel, "UpdateApplication", name, attrs, options);
}

/**
 * Removes an application, and Flame drops its sessions. In-band failures
 * are thrown as FlameError: sqlite and fs refuse while it has open
 * sessions ("invalid-state"); fs refuses an unknown name ("not-found"),
 * sqlite and none accept it.
 */
export async function unregisterApplication(
  channel: Channel,
  name: string,
  options?: CallOptions,
): Promise<void> {
  await resultCall(
    channel,
    "UnregisterApplication",
    (o) => channel.client.unregisterApplication({ name }, o),
    options,
  );
}

/** One application; FlameError "not-found" if there is none by this name. */
export async function getApplication(
  channel: Channel,
  name: string,
  options?: CallOptions,
): Promise<Application> {
  const message = await channel.rpc.unary(
    "GetApplication",
    (o) => channel.client.getApplication({ name }, o),
    options,
    true,
  );
  return toApplication(message);
}

/**
 * Every registered application (Flame starts with flmexec, flmping and
 * flmrun), oldest first, then by name: Flame lists them in no particular
 * order.
 */
export async function listApplications(
  channel: Channel,
  options?: CallOptions,
): Promise<Application[]> {
  const list = await channel.rpc.unary(
    "ListApplication",
    (o) => channel.client.listApplication({}, o),
    options,
    true,
  );
  return sortByCreation(list.applications.map(toApplication), (a) => a.name);
}

/** RegisterApplication or UpdateApplication: a name and a spec, size-checked before sending. */
function sendSpec(
  channel: Channel,
  method: "RegisterApplication" | "UpdateApplication",
  name: string,
  attrs: ApplicationAttributes,
  options: CallOptions | undefined,
): Promise<void> {
  const request = { name, application: toApplicationSpec(attrs) };
  const register = method === "RegisterApplication";
  const schema = register ? RegisterApplicationRequestSchema : UpdateApplicationRequestSchema;
  checkRequestSize(method, channel.rpc.maxRequestBytes, schema, request);
  const { client } = channel;
  return resultCall(
    channel,
    method,
    (o) =>
      register ? client.registerApplication(request, o) : client.updateApplication(request, o),
    options,
  );
}

/** An application call: Flame answers with a Result, failure in-band; never retried. */
async function resultCall(
  channel: Channel,
  method: string,
  call: (options: WireCallOptions) => Promise<Result>,
  options: CallOptions | undefined,
): Promise<void> {
  const result = await channel.rpc.unary(method, call, options, false);
  if (result.returnCode < 0) throw resultError(method, result.returnCode, result.message);
}
