import type { CallOptions } from "./call-options.js";
import type { Channel } from "./channel.js";
import type { TaskCodec } from "./codec.js";
import { bytesCodec } from "./codec.js";
import { replyError } from "./errors.js";
import { CreateTaskRequestSchema } from "./gen/flame/v1/frontend_pb.js";
import { sortById } from "./internal/list-order.js";
import { checkRequestSize, roughSize } from "./internal/request-size.js";
import type { Rpc } from "./internal/rpc.js";
import type { Scope } from "./internal/scope.js";
import { decideBySession } from "./internal/session-check.js";
import type { Task } from "./task.js";
import { toTask } from "./task.js";

/**
 * The session a standalone task call acts on: its id, or anything with an
 * `id` (a `SessionInfo`, a `Session`) and, optionally, the codecs its task
 * input and output go through (bytes when there are none).
 */
export type SessionRef<In = Uint8Array, Out = Uint8Array> =
  | string
  | { readonly id: string; readonly codec?: TaskCodec<In, Out> | undefined };

/** @internal The id of a SessionRef. */
export function sessionIdOf(session: SessionRef<unknown, unknown>): string {
  return typeof session === "string" ? session : session.id;
}

/** @internal The id and codecs of a SessionRef. */
export function resolveSession<In, Out>(
  session: SessionRef<In, Out>,
): { id: string; codec: TaskCodec<In, Out> } {
  const codec = typeof session === "string" ? undefined : session.codec;
  return {
    id: sessionIdOf(session),
    codec: codec ?? (bytesCodec as unknown as TaskCodec<In, Out>),
  };
}

/**
 * Creates a task. Never retried: a retry could create it twice. A closed
 * session fails with kind "invalid-state", an unknown one "not-found"
 * (where Flame's answer does not say which, one GetSession decides); an
 * input that makes the request bigger than `maxRequestBytes` (Flame's
 * 4 MiB) fails with "invalid-input" before anything is sent.
 */
export function createTask<In = Uint8Array, Out = Uint8Array>(
  channel: Channel,
  session: SessionRef<In, Out>,
  input?: In,
  options?: CallOptions,
): Promise<Task> {
  const { id, codec } = resolveSession(session);
  return createTaskIn(channel.rpc, id, codec, input, options);
}

/**
 * @internal `createTask` within a caller's scope (a run, a bulk run) or
 * with plain CallOptions.
 */
export async function createTaskIn<In>(
  rpc: Rpc,
  sessionId: string,
  codec: TaskCodec<In, unknown>,
  input: In | undefined,
  options: (CallOptions & { scope?: Scope | undefined }) | undefined,
): Promise<Task> {
  const bytes = input === undefined ? undefined : codec.input.encode(input);
  const request = { task: { sessionId, input: bytes } };
  const rough = roughSize(bytes?.byteLength ?? 0, sessionId);
  checkRequestSize("CreateTask", rpc.maxRequestBytes, CreateTaskRequestSchema, request, rough);
  const message = await rpc
    .unary("CreateTask", (o) => rpc.client.createTask(request, o), options, false)
    .catch(async (err: unknown) => {
      throw await decideBySession(rpc, err, sessionId, options);
    });
  const task = toTask(message, { sessionId });
  // Without its id the task could never be watched, read or cancelled.
  if (task.id === "") throw replyError("CreateTask", "the reply carried no task id");
  return task;
}

/** One task; FlameError "not-found" if there is none with this id. */
export async function getTask(
  channel: Channel,
  session: SessionRef<unknown, unknown>,
  taskId: string,
  options?: CallOptions,
): Promise<Task> {
  const { rpc } = channel;
  const sessionId = sessionIdOf(session);
  const message = await rpc.unary(
    "GetTask",
    (o) => rpc.client.getTask({ sessionId, taskId }, o),
    options,
    true,
  );
  return toTask(message, { id: taskId, sessionId });
}

/**
 * Every task of the session by id (ListTask streams them in no particular
 * order; collected and sorted here). On real Flame the tasks carry no
 * events (or a stale copy): `getTask` has them.
 */
export async function listTasks(
  channel: Channel,
  session: SessionRef<unknown, unknown>,
  options?: CallOptions,
): Promise<Task[]> {
  return sortById(await readTasks(channel.rpc, sessionIdOf(session), options));
}

/** @internal Every task of a session, in the server's order (ListTask, collected). */
export function readTasks(
  rpc: Rpc,
  sessionId: string,
  options: (CallOptions & { scope?: Scope | undefined }) | undefined,
): Promise<Task[]> {
  return rpc.unary(
    "ListTask",
    async (o) => {
      const tasks: Task[] = [];
      for await (const m of rpc.client.listTask({ sessionId }, o)) {
        tasks.push(toTask(m, { sessionId }));
      }
      return tasks;
    },
    options,
    true,
    // A long list is not cut off by the default deadline; a caller's still applies.
    undefined,
  );
}
