// The list + watch page of ours.ts written with connect() and the methods
// of Connection and Session: what the convenient form costs a page (every
// call is bundled). Built by bundle-size.ts, never served.
import { connect, TaskState } from "@flame-ts/web";

const flame = connect(location.origin);
const list = document.createElement("ul");
document.body.append(list);
for (const session of await flame.listSessions()) {
  const item = document.createElement("li");
  item.textContent = `${session.id} ${session.application} ${session.succeed}/${session.pending}`;
  list.append(item);
}
const params = new URLSearchParams(location.search);
const session = await flame.openSession(params.get("session") ?? "");
session.watchTask(params.get("task") ?? "1").subscribe({
  next: (task) => {
    document.title = `task ${task.id}: ${TaskState[task.state]}`;
  },
  error: (err: unknown) => {
    document.title = String(err);
  },
});
