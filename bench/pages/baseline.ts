// The same page on a bare connect-web client for the Frontend service: the
// baseline for the bundle-size case. No current state first, no resume.
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
const request = { sessionId: params.get("session") ?? "", taskId: params.get("task") ?? "1" };
try {
  for await (const task of client.watchTask(request)) {
    document.title = `task ${task.metadata?.id}: ${TaskState[task.status?.state ?? 0]}`;
  }
} catch (err) {
  document.title = String(err);
}
