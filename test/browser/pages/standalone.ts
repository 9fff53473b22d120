// A page on openChannel and three standalone functions: the bundling test
// builds it to prove that a page holds only the calls it makes (no
// Connection or Session methods, no Connect protocol).
import { listSessions, openChannel, openSession, watchTask } from "@flame-ts/web";

const flame = openChannel(new URLSearchParams(location.search).get("flame") ?? location.origin);
const [first] = await listSessions(flame);
if (first !== undefined) {
  const session = await openSession(flame, first.id);
  watchTask(flame, session, "1").subscribe((task) => {
    document.title = `${task.id} ${task.state}`;
  });
}
