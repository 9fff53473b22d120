import { isTerminal, type Session, type Task, TaskState } from "@flame-ts/web";
import type { Subscription } from "rxjs";
import { h, replace } from "./dom.js";
import { encode, errorText, preview, taskStateName, time } from "./format.js";

const states = [
  TaskState.Pending,
  TaskState.Running,
  TaskState.Succeed,
  TaskState.Failed,
  TaskState.Cancelled,
];

/**
 * One open session: its task counts and a table of its tasks, kept live by
 * `session.watchSession()` — a single Observable for every task that stays
 * within the browser's six connections per origin however many tasks run.
 */
export class SessionView {
  readonly element = h("section", { class: "card", "data-testid": "session-view" });
  private readonly tasks = new Map<string, Task>();
  private subscription: Subscription | undefined;
  private renderQueued = false;
  private status = "";

  constructor(
    readonly session: Session,
    private readonly onChange: () => void,
  ) {
    this.watch();
    this.render();
  }

  /** Creates `count` tasks; the watch shows them move through their states. */
  async runTasks(count: number, input: string): Promise<void> {
    this.setStatus(`creating ${count} task(s)…`);
    try {
      // One by one, so task ids follow the input numbers and rows appear as they go.
      for (let i = 1; i <= count; i++) {
        this.upsert(await this.session.createTask(encode(`${input} #${i}`)));
      }
      this.setStatus(`created ${count} task(s)`);
      this.watch(); // picks up the new tasks if the previous watch had completed
    } catch (err) {
      this.setStatus(`could not create tasks: ${errorText(err)}`);
    }
  }

  async close(): Promise<void> {
    try {
      await this.session.close();
      this.setStatus("session closed");
    } catch (err) {
      this.setStatus(errorText(err));
    }
    this.onChange();
  }

  dispose(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
  }

  private watch(): void {
    if (this.subscription && !this.subscription.closed) return;
    this.subscription = this.session.watchSession().subscribe({
      next: (task) => this.upsert(task),
      error: (err: unknown) => this.setStatus(`watch failed: ${errorText(err)}`),
      complete: () => this.onChange(),
    });
  }

  private upsert(task: Task): void {
    const known = this.tasks.get(task.id);
    // Keep a terminal state once seen: a late, older emission must not undo it.
    if (known && isTerminal(known.state) && !isTerminal(task.state)) return;
    this.tasks.set(task.id, task);
    if (isTerminal(task.state) && (!known || !isTerminal(known.state))) this.onChange();
    this.queueRender();
  }

  private setStatus(text: string): void {
    this.status = text;
    this.queueRender();
  }

  // Many tasks change at once; draw at most once a frame.
  private queueRender(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  private render(): void {
    const tasks = [...this.tasks.values()].sort((a, b) => Number(a.id) - Number(b.id));
    const counts = new Map(states.map((s) => [s, 0]));
    for (const t of tasks) counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
    replace(
      this.element,
      h(
        "header",
        {},
        h("h2", {}, "Session ", h("code", {}, this.session.id)),
        h("span", { class: "muted" }, this.session.application),
        h("button", { type: "button", onclick: () => void this.close() }, "Close session"),
      ),
      h(
        "div",
        { class: "counts", "data-testid": "task-counts" },
        ...states.map((s) =>
          h(
            "div",
            {
              class: `count state-${taskStateName(s).toLowerCase()}`,
              "data-state": taskStateName(s),
            },
            h("b", {}, counts.get(s) ?? 0),
            h("span", {}, taskStateName(s)),
          ),
        ),
      ),
      h("p", { class: "muted", "data-testid": "session-status" }, this.status),
      tasks.length === 0
        ? h("p", { class: "muted" }, "No tasks yet.")
        : h(
            "table",
            {},
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ...["task", "state", "created", "completed", "output"].map((t) => h("th", {}, t)),
              ),
            ),
            h(
              "tbody",
              {},
              ...tasks.map((t) =>
                h(
                  "tr",
                  {
                    "data-testid": "task-row",
                    "data-id": t.id,
                    "data-state": taskStateName(t.state),
                  },
                  h("td", { class: "num" }, t.id),
                  h(
                    "td",
                    {},
                    h(
                      "span",
                      { class: `badge state-${taskStateName(t.state).toLowerCase()}` },
                      taskStateName(t.state),
                    ),
                  ),
                  h("td", { class: "muted" }, time(t.creationTime)),
                  h("td", { class: "muted" }, time(t.completionTime)),
                  h("td", { class: "clip" }, h("code", {}, preview(t.output))),
                ),
              ),
            ),
          ),
    );
  }
}
