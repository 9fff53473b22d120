import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { Frontend, TaskState } from "@flame-ts/core/gen";
import type { Target } from "./target.js";

/** How long one call of the normal client may take while the server is under attack. */
const callTimeoutMs = 15_000;

let sessions = 0;

/**
 * A well-behaved Flame client: opens a session, runs one task and watches
 * it to the end, with real Connect clients, over gRPC on HTTP/2 and over
 * gRPC-Web on HTTP/1.1 (what a browser speaks). Rejects if either is not
 * served properly.
 */
export async function normalClientServed(target: Target): Promise<void> {
  const options = { baseUrl: target.server.url, useBinaryFormat: true } as const;
  await Promise.all([
    runOneTask(createClient(Frontend, createGrpcTransport(options)), target, "grpc"),
    runOneTask(
      createClient(Frontend, createGrpcWebTransport({ ...options, httpVersion: "1.1" })),
      target,
      "grpc-web",
    ),
  ]);
}

async function runOneTask(
  client: Client<typeof Frontend>,
  target: Target,
  protocol: string,
): Promise<void> {
  const call = { headers: target.callHeaders, timeoutMs: callTimeoutMs };
  const sessionId = `normal-${process.pid}-${++sessions}`;
  const input = new TextEncoder().encode(`${protocol} ${sessionId}`);
  await client.createSession({ sessionId, session: { application: "flmexec" } }, call);
  const task = await client.createTask({ task: { sessionId, input } }, call);
  const taskId = task.metadata?.id as string;
  let last: TaskState | undefined;
  let output: Uint8Array | undefined;
  for await (const update of client.watchTask({ sessionId, taskId }, call)) {
    last = update.status?.state;
    output = update.spec?.output;
  }
  if (last !== TaskState.Succeed) {
    throw new Error(`${protocol}: task ended ${String(last)}, not Succeed`);
  }
  if (new TextDecoder().decode(output) !== new TextDecoder().decode(input)) {
    throw new Error(`${protocol}: the echo task's output is not its input`);
  }
  await client.closeSession({ sessionId }, call);
}
