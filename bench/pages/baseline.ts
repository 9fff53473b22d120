// The same calls on a bare connect-web client for the Frontend service: the
// baseline for the bundle-size case. ListSession, OpenSession, then GetTask
// for the current state and WatchTask for the changes, as ours makes them;
// no resume, no de-duplication, no Observable.
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { Frontend, TaskState } from "@flame-ts/core/gen";

const client = createClient(Frontend, createGrpcWebTransport({ baseUrl: location.origin }));
const list = document.createElement("ul");
document.body.append(list);
for (const session of (await client.listSession({})).sessions) {
  const item = document.createElement("li");
  const status = session.status;
  item.textContent = `${session.metadata?.id} ${session.spec?.application} ${status?.succeed}/${status?.pending}`;
  list.append(item);
}
const params = new URLSearchParams(location.search);
const sessionId = params.get("session") ?? "";
const request = { sessionId, taskId: params.get("task") ?? "1" };
const show = (task: { metadata?: { id: string }; status?: { state: TaskState } }) => {
  document.title = `task ${task.metadata?.id}: ${TaskState[task.status?.state ?? 0]}`;
};
try {
  await client.openSession({ sessionId });
  const watch = client.watchTask(request);
  show(await client.getTask(request));
  for await (const task of watch) show(task);
} catch (err) {
  document.title = String(err);
}
