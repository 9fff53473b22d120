// Many watchTask subscriptions with what each one saw, shared by the suites
// that check what a crowd of watches delivers.
import type { Session, Task } from "@flame-ts/core";
import type { Subscription } from "rxjs";

/** What each watch emitted (by position in the ids), and how they ended. */
export interface Watched {
  seen: Task[][];
  errors: unknown[];
  completed: number;
}

/** Subscribes `session.watchTask(id)` for each id; the subscriptions go into `into`. */
export function watchAll(session: Session, ids: string[], into: Subscription[]): Watched {
  const watched: Watched = { seen: ids.map(() => []), errors: [], completed: 0 };
  ids.forEach((id, i) => {
    into.push(
      session.watchTask(id).subscribe({
        next: (t) => watched.seen[i]?.push(t),
        error: (e) => watched.errors.push(e),
        complete: () => watched.completed++,
      }),
    );
  });
  return watched;
}
