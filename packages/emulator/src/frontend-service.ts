import type { ConnectRouter, HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Frontend, TaskState } from "@flame-ts/core/gen";
import { checkApplicationSpec, toApplication } from "./applications.js";
import { invalidConfig, notFound } from "./errors.js";
import type { ListOrder } from "./list-order.js";
import { isTerminal, type TaskMessage, toSession, toTask } from "./records.js";
import type { SessionManager } from "./session-manager.js";
import type { StreamRegistry } from "./stream-registry.js";

const result = (failure: string | undefined) =>
  failure === undefined ? { returnCode: 0 } : { returnCode: -1, message: failure };

/** The Frontend service over a SessionManager; mount it on any Connect router. */
export const frontendRoutes =
  (manager: SessionManager, streams: StreamRegistry, order: ListOrder) =>
  (router: ConnectRouter) => {
    const impl: ServiceImpl<typeof Frontend> = {
      registerApplication(req) {
        // Flame's own typo.
        if (!req.application) throw invalidConfig("applilcation spec is missed");
        checkApplicationSpec(req.application);
        return result(manager.registerApplication(req.name, req.application));
      },
      updateApplication(req) {
        if (!req.application) throw invalidConfig("applilcation spec is missed");
        checkApplicationSpec(req.application);
        return result(manager.updateApplication(req.name, req.application));
      },
      unregisterApplication(req) {
        return result(manager.unregisterApplication(req.name));
      },
      getApplication(req) {
        return toApplication(manager.getApplication(req.name));
      },
      listApplication() {
        return { applications: order.shuffle(manager.applications.values()).map(toApplication) };
      },
      listExecutor() {
        return { executors: order.shuffle(manager.executors.listExecutors()) };
      },
      listNodes() {
        const node = manager.executors.describeNode();
        return { nodes: node ? [node] : [] };
      },
      getNode(req) {
        const node = manager.executors.describeNode();
        if (node?.metadata?.name !== req.name) throw notFound(`node <${req.name}> not found`);
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
        return toSession(manager.getSession(req.sessionId), true);
      },
      listSession() {
        const sessions = order.shuffle(manager.sessions.values());
        return { sessions: sessions.map((session) => toSession(session, true)) };
      },
      createTask(req) {
        // Flame's wording for a missing task, too.
        if (!req.task) throw invalidConfig("session spec");
        return manager.createTask(req.task.sessionId, req.task.input);
      },
      getTask(req) {
        const task = manager.getTask(req.sessionId, req.taskId);
        return toTask(task, task.events);
      },
      watchTask(req, ctx) {
        // Validate before the stream opens, so a bad id is an error, not a broken stream.
        const task = manager.findTask(req.sessionId, req.taskId);
        return streams.track(ctx, watch(manager, task, ctx));
      },
      listTask(req, ctx) {
        const session = manager.getSession(req.sessionId);
        const tasks = order.shuffle(session.tasks.values()).map((task) => toTask(task));
        return streams.track(ctx, list(tasks));
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
