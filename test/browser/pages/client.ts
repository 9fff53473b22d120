// The page the browser tests drive: every scenario is a function on
// `window.flameTest` that takes server URLs and returns plain data.
import {
  type Connection,
  connect,
  createConnectTransport,
  createSession,
  createTask,
  FlameError,
  isTerminal,
  listSessions,
  openChannel,
  openSession,
  type Task,
  TaskState,
  watchTask,
} from "@flame-ts/web";
import type { Subscription } from "rxjs";

const utf8 = new TextDecoder();
const encode = (s: string) => new TextEncoder().encode(s);
const stateName = (s: TaskState) => TaskState[s] ?? String(s);

/** What a failed call looked like from inside the page. */
export interface PageError {
  isFlameError: boolean;
  kind?: string;
  code?: number;
  message: string;
}

function describe(err: unknown): PageError {
  if (FlameError.is(err)) {
    return {
      isFlameError: true,
      kind: err.kind,
      ...(err.code === undefined ? {} : { code: err.code }),
      message: err.message,
    };
  }
  return { isFlameError: false, message: String(err) };
}

async function withConnection<T>(url: string, body: (flame: Connection) => Promise<T>): Promise<T> {
  const flame = connect(url, { retry: false });
  try {
    return await body(flame);
  } finally {
    await flame.close();
  }
}

// Watches started by startWatch, by handle, so a later call can stop them.
const watches = new Map<
  number,
  { subscription: Subscription; states: string[]; flame: Connection; done: Promise<void> }
>();
let nextHandle = 1;

interface SessionWatch {
  sessionId: string;
  /** Latest state seen per task id. */
  latest: Map<string, TaskState>;
  emissions: number;
  done: Promise<void>;
  error?: PageError;
  subscription: Subscription;
  flame: Connection;
}
let sessionWatch: SessionWatch | undefined;
const naiveWatches: Subscription[] = [];
const naiveStates = new Map<string, string[]>();
let naiveConnection: Connection | undefined;

const api = {
  /** connect() rejects URLs a browser cannot use; returns the error it threw. */
  connectError(url: string): PageError | undefined {
    try {
      void connect(url).close();
      return undefined;
    } catch (err) {
      return describe(err);
    }
  },

  listApplications: (url: string, timeoutMs?: number) =>
    withConnection(url, async (flame) =>
      (await flame.listApplications(timeoutMs === undefined ? {} : { timeoutMs }))
        .map((a) => a.name)
        .sort(),
    ),

  /** listApplications over the Connect protocol, in JSON: the request's content-type too. */
  async listApplicationsOverConnect(url: string) {
    const sent: string[] = [];
    const flame = connect(url, {
      retry: false,
      transport: createConnectTransport,
      useBinaryFormat: false,
      interceptors: [
        (next) => (req) => {
          sent.push(req.header.get("content-type") ?? "");
          return next(req);
        },
      ],
    });
    try {
      const names = (await flame.listApplications()).map((a) => a.name).sort();
      return { names, sent };
    } finally {
      await flame.close();
    }
  },

  /** Same as listApplications, but reports a failure instead of throwing it. */
  async tryListApplications(
    url: string,
    timeoutMs?: number,
  ): Promise<{ names: string[] } | { error: PageError }> {
    try {
      return { names: await api.listApplications(url, timeoutMs) };
    } catch (err) {
      return { error: describe(err) };
    }
  },

  /** Creates a session and runs one task per input; outputs come back as text. */
  runTasks: (url: string, application: string, inputs: string[]) =>
    withConnection(url, async (flame) => {
      const session = await flame.createSession({ application });
      const results = await Promise.all(inputs.map((input) => session.run(encode(input))));
      const listed = await flame.listSessions();
      await session.close();
      return {
        sessionId: session.id,
        sessionListed: listed.some((s) => s.id === session.id),
        results: results.map((r) => ({
          taskId: r.taskId,
          state: stateName(r.state),
          output: r.output === undefined ? undefined : utf8.decode(r.output),
        })),
      };
    }),

  /**
   * The bench's list + watch page, on openChannel and the standalone
   * functions: create a session with tasks, list the sessions, open the
   * session by id, and watch each task to its end.
   */
  async standaloneListAndWatch(url: string, application: string, count: number) {
    const channel = openChannel(url, { retry: false });
    try {
      const created = await createSession(channel, { application });
      const tasks = await Promise.all(
        Array.from({ length: count }, (_, i) => createTask(channel, created, encode(`s${i}`))),
      );
      const listed = (await listSessions(channel)).some((s) => s.id === created.id);
      const session = await openSession(channel, created.id);
      const states = await Promise.all(
        tasks.map(
          (task) =>
            new Promise<string[]>((resolve, reject) => {
              const seen: string[] = [];
              watchTask(channel, session, task.id).subscribe({
                next: (t) => seen.push(stateName(t.state)),
                error: reject,
                complete: () => resolve(seen),
              });
            }),
        ),
      );
      return { sessionId: session.id, application: session.application, listed, states };
    } finally {
      await channel.close();
    }
  },

  /** Creates a task and starts watching it; the watch stays open until it completes or stopWatch. */
  async startWatch(
    url: string,
    application: string,
  ): Promise<{ handle: number; sessionId: string; taskId: string }> {
    const flame = connect(url, { retry: false });
    const session = await flame.createSession({ application });
    const task = await session.createTask(encode("watched"));
    const states: string[] = [];
    let settle!: () => void;
    const done = new Promise<void>((resolve) => {
      settle = resolve;
    });
    const subscription = session.watchTask(task.id).subscribe({
      next: (t: Task) => states.push(stateName(t.state)),
      error: (err: unknown) => {
        states.push(`error: ${describe(err).message}`);
        settle();
      },
      complete: () => {
        states.push("complete");
        settle();
      },
    });
    const handle = nextHandle++;
    watches.set(handle, { subscription, states, flame, done });
    return { handle, sessionId: session.id, taskId: task.id };
  },

  watchStates: (handle: number) => [...(watches.get(handle)?.states ?? [])],

  /** Waits for the watch to complete (or fail); returns what it emitted, then "complete". */
  async finishWatch(handle: number): Promise<string[]> {
    const watch = watches.get(handle);
    if (!watch) throw new Error(`no watch ${handle}`);
    await watch.done;
    watches.delete(handle);
    await watch.flame.close();
    return watch.states;
  },

  /** Unsubscribes: the watch's stream must be cancelled on the server at once. */
  async stopWatch(handle: number): Promise<string[]> {
    const watch = watches.get(handle);
    if (!watch) throw new Error(`no watch ${handle}`);
    watch.subscription.unsubscribe();
    watches.delete(handle);
    return watch.states;
  },

  /**
   * The naive way, for contrast: one watchTask per task. Over HTTP/1.1 each
   * open stream holds one of the browser's connections to the origin.
   */
  async startNaiveWatches(
    url: string,
    application: string,
    count: number,
    watchStreams?: number,
  ): Promise<number> {
    const flame = connect(url, {
      retry: false,
      ...(watchStreams === undefined ? {} : { watch: { maxStreams: watchStreams } }),
    });
    const session = await flame.createSession({ application });
    const tasks = await Promise.all(
      Array.from({ length: count }, (_, i) => session.createTask(encode(`n${i}`))),
    );
    naiveStates.clear();
    for (const task of tasks) {
      naiveWatches.push(
        session.watchTask(task.id).subscribe({
          next: (t: Task) => {
            const seen = naiveStates.get(t.id) ?? [];
            seen.push(stateName(t.state));
            naiveStates.set(t.id, seen);
          },
          error: () => {},
        }),
      );
    }
    naiveConnection = flame;
    return tasks.length;
  },

  /** Every state each watchTask of startNaiveWatches has emitted so far, by task id. */
  naiveWatchStates(): Record<string, string[]> {
    return Object.fromEntries(naiveStates);
  },

  async stopNaiveWatches(): Promise<void> {
    for (const s of naiveWatches.splice(0)) s.unsubscribe();
    await naiveConnection?.close();
  },

  /** Creates a session with `count` tasks and watches all of them with one watchSession. */
  async startSessionWatch(
    url: string,
    application: string,
    count: number,
  ): Promise<{ sessionId: string }> {
    const flame = connect(url, { retry: false });
    const session = await flame.createSession({ application });
    const tasks = await Promise.all(
      Array.from({ length: count }, (_, i) => session.createTask(encode(`t${i}`))),
    );
    const latest = new Map<string, TaskState>(tasks.map((t) => [t.id, t.state]));
    let settle!: () => void;
    let fail!: (err: unknown) => void;
    const done = new Promise<void>((ok, ko) => {
      settle = ok;
      fail = ko;
    });
    done.catch(() => {});
    const watch: Partial<SessionWatch> = {
      sessionId: session.id,
      latest,
      emissions: 0,
      done,
      flame,
    };
    watch.subscription = session.watchSession().subscribe({
      next: (t: Task) => {
        watch.emissions = (watch.emissions ?? 0) + 1;
        latest.set(t.id, t.state);
        if ([...latest.values()].every(isTerminal)) settle();
      },
      error: (err: unknown) => {
        watch.error = describe(err);
        fail(err);
      },
    });
    sessionWatch = watch as SessionWatch;
    return { sessionId: session.id };
  },

  /** How many of the watched tasks have reached a terminal state so far. */
  sessionWatchProgress() {
    const w = sessionWatch;
    if (!w) throw new Error("no session watch");
    const values = [...w.latest.values()];
    return {
      terminal: values.filter(isTerminal).length,
      total: values.length,
      emissions: w.emissions,
      error: w.error,
    };
  },

  /** Waits for every task's terminal state, then stops the watch. */
  async finishSessionWatch() {
    const w = sessionWatch;
    if (!w) throw new Error("no session watch");
    await w.done;
    w.subscription.unsubscribe();
    await w.flame.close();
    sessionWatch = undefined;
    const states: Record<string, string> = {};
    for (const [id, state] of w.latest) states[id] = stateName(state);
    return { states, emissions: w.emissions };
  },
};

export type PageApi = typeof api;

(window as unknown as { flameTest: PageApi }).flameTest = api;
