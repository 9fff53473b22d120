import type { ConnectRouter, HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Frontend, TaskState } from "@flame-ts/core/gen";
import { toApplication } from "./applications.js";
import { invalidConfig, notFound } from "./errors.js";
import { isTerminal, type TaskMessage, toSession, toTask } from "./records.js";
import type { SessionManager } from "./session-manager.js";
import type { StreamRegistry } from "./stream-registry.js";

const result = (failure: string | undefined) =>
  failure === undefined ? { returnCode: 0 } : { returnCode: -1, message: failure };

/** The Frontend service over a SessionManager; mount it on any Connect router. */
export const frontendRoutes =
  (manager: SessionManager, streams: StreamRegistry) => (router: ConnectRouter) => {
    const impl: ServiceImpl<typeof Frontend> = {
      registerApplication(req) {
        if (!req.application) throw invalidConfig("application spec is required");
        return result(manager.registerApplication(req.name, req.application));
      },
      updateApplication(req) {
        if (!req.application) throw invalidConfig("application spec is required");
        return result(manager.updateApplication(req.name, req.application));
      },
      unregisterApplication(req) {
        return result(manager.unregisterApplication(req.name));
      },
      getApplication(req) {
        return toApplication(manager.getApplication(req.name));
      },
      listApplication() {
        return { applications: [...manager.applications.values()].map(toApplication) };
      },
      listExecutor() {
        return { executors: manager.executors.listExecutors() };
      },
      listNodes() {
        return { nodes: [manager.executors.describeNode()] };
      },
      getNode(req) {
        const node = manager.executors.describeNode();
        if (node.metadata?.name !== req.name) throw notFound(`node ${req.name} not found`);
        return { node };
      },
      createSession(req) {
        return toSession(manager.createSession(req.sessionId, req.session));
      },
      openSession(req) {
        return toSession(manager.openSession(req.sessionId, req.session));
      },
      closeSession(req) {
        return toSession(manager.closeSession(req.sessionId));
      },
      deleteSession(req) {
        return toSession(manager.deleteSession(req.sessionId));
      },
      getSession(req) {
        return toSession(manager.getSession(req.sessionId));
      },
      listSession() {
        return { sessions: [...manager.sessions.values()].map(toSession) };
      },
      createTask(req) {
        if (!req.task) throw invalidConfig("task spec is required");
        return toTask(manager.createTask(req.task.sessionId, req.task.input));
      },
      getTask(req) {
        return toTask(manager.getTask(req.sessionId, req.taskId));
      },
      watchTask(req, ctx) {
        // Validate before the stream opens, so a bad id is an error, not a broken stream.
        const task = manager.findTask(req.sessionId, req.taskId);
        return streams.track(ctx, watch(manager, task, ctx));
      },
      listTask(req, ctx) {
        const session = manager.getSession(req.sessionId);
        return streams.track(ctx, list([...session.tasks.values()].map(toTask)));
      },
    };
    router.service(Frontend, impl);
  };

async function* list(tasks: TaskMessage[]): AsyncGenerator<TaskMessage> {
  yield* tasks;
}

async function* watch(
  manager: SessionManager,
  task: ReturnType<SessionManager["findTask"]>,
  ctx: HandlerContext,
): AsyncGenerator<TaskMessage> {
  // Flame sends no initial state, and an unknown task just ends the stream.
  if (!task) return;
  if (isTerminal(task.state)) {
    yield toTask(task);
    return;
  }
  if (ctx.signal.aborted) return;
  const queue = manager.watch(task);
  // Unwatch on the abort itself: the body may never be resumed to reach
  // `finally` (see StreamRegistry.track), and must not stay on the task.
  const onAbort = () => manager.unwatch(task, queue);
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      const next = await queue.next();
      if (next.done) return;
      yield next.value;
      if (isTerminal(next.value.status?.state ?? TaskState.Pending)) return;
    }
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
    manager.unwatch(task, queue);
  }
}
