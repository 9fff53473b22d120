// A minimal list + watch page on @flame-ts/web, written as a size-minded
// app would be: a Channel and the standalone functions it calls, so the
// bundle holds those calls only. Built by bundle-size.ts, never served.
import { listSessions, openChannel, openSession, TaskState, watchTask } from "@flame-ts/web";

const flame = openChannel(location.origin);
const list = document.createElement("ul");
document.body.append(list);
for (const session of await listSessions(flame)) {
  const item = document.createElement("li");
  item.textContent = `${session.id} ${session.application} ${session.succeed}/${session.pending}`;
  list.append(item);
}
const params = new URLSearchParams(location.search);
const session = await openSession(flame, params.get("session") ?? "");
watchTask(flame, session, params.get("task") ?? "1").subscribe({
  next: (task) => {
    document.title = `task ${task.id}: ${TaskState[task.state]}`;
  },
  error: (err: unknown) => {
    document.title = String(err);
  },
});
