import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  CreateTaskRequestSchema,
  TaskSchema,
  TaskState,
  WatchTaskRequestSchema,
} from "@flame-ts/core/gen";
import {
  ErrorCode,
  Flag,
  type Frame,
  FrameType,
  frame,
  type Goaway,
  grpcMessage,
  grpcRequestHead,
  RawH2Connection,
  rstStream,
} from "./h2-wire.js";

class GoingAway extends Error {
  constructor() {
    super("the server is closing the connection");
  }
}

const terminal = new Set([TaskState.Succeed, TaskState.Failed, TaskState.Cancelled]);

export interface WatcherRun {
  /** Tasks seen to their terminal state. */
  finished: number;
  /** RST_STREAM frames sent for watch streams the client was done with. */
  resetsSent: number;
  goaways: Goaway[];
  /** Resets sent before the first GOAWAY came, if one came. */
  resetsBeforeGoaway: number | undefined;
}

/**
 * A client that behaves as Flame's Python SDK does: for each of `tasks`
 * tasks (at most `inFlight` at once) it calls CreateTask, watches the task
 * and, as soon as it sees the terminal state, resets the watch stream
 * unless the server ended it in the same read. Raw frames, so that the
 * reset goes out at once whenever the server's trailers come later.
 */
export async function runResettingWatcher(options: {
  port: number;
  sessionId: string;
  tasks: number;
  inFlight: number;
  headers: Readonly<Record<string, string>>;
}): Promise<WatcherRun> {
  const connection = new RawH2Connection(options.port);
  await connection.ready();
  const createHead = grpcRequestHead(options.port, "CreateTask", options.headers);
  const watchHead = grpcRequestHead(options.port, "WatchTask", options.headers);
  const run: WatcherRun = {
    finished: 0,
    resetsSent: 0,
    goaways: connection.goaways,
    resetsBeforeGoaway: undefined,
  };
  /** What each open stream does with the messages it receives. */
  const onMessage = new Map<number, (message: Uint8Array) => void>();
  const received = new Map<number, Buffer>();
  const onEnd = new Map<number, () => void>();
  /** Watches whose task is done, to reset once the frames read with it are handled. */
  const done = new Set<number>();

  connection.onEachFrame((f: Frame) => {
    if (f.type === FrameType.goaway) run.resetsBeforeGoaway ??= run.resetsSent;
    if (f.type === FrameType.data && f.payload.length > 0) {
      let pending = Buffer.concat([received.get(f.streamId) ?? Buffer.alloc(0), f.payload]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
        const length = pending.readUInt32BE(1);
        onMessage.get(f.streamId)?.(pending.subarray(5, 5 + length));
        pending = pending.subarray(5 + length);
      }
      received.set(f.streamId, pending);
    }
    const ended =
      ((f.type === FrameType.data || f.type === FrameType.headers) && f.flags & Flag.endStream) ||
      f.type === FrameType.rstStream;
    if (ended) {
      onMessage.delete(f.streamId);
      received.delete(f.streamId);
      done.delete(f.streamId);
      const end = onEnd.get(f.streamId);
      onEnd.delete(f.streamId);
      end?.();
    }
  });
  // A stream the server ended in the same read is closed: a client may not
  // send RST_STREAM on it (RFC 9113, 5.1), and real clients do not.
  connection.onEachRead(() => {
    for (const id of done) {
      connection.write(rstStream(id, ErrorCode.cancel));
      run.resetsSent++;
      onMessage.delete(id);
      const end = onEnd.get(id);
      onEnd.delete(id);
      end?.();
    }
    done.clear();
  });

  const call = (
    head: Buffer,
    body: Uint8Array,
    onReply: (message: Uint8Array, id: number) => void,
  ) =>
    new Promise<void>((resolve, reject) => {
      if (connection.goaways.length > 0 || connection.socket.destroyed) {
        reject(new GoingAway());
        return;
      }
      const id = connection.streamId();
      onMessage.set(id, (message) => onReply(message, id));
      onEnd.set(id, resolve);
      connection.write(
        Buffer.concat([
          frame(FrameType.headers, Flag.endHeaders, id, head),
          frame(FrameType.data, Flag.endStream, id, grpcMessage(body)),
        ]),
      );
    });

  const oneTask = async () => {
    let taskId = "";
    await call(
      createHead,
      toBinary(
        CreateTaskRequestSchema,
        create(CreateTaskRequestSchema, { task: { sessionId: options.sessionId } }),
      ),
      (message) => {
        taskId = fromBinary(TaskSchema, message).metadata?.id ?? "";
      },
    );
    if (taskId === "") throw new Error("CreateTask returned no task");
    let seen = false;
    await call(
      watchHead,
      toBinary(
        WatchTaskRequestSchema,
        create(WatchTaskRequestSchema, { sessionId: options.sessionId, taskId }),
      ),
      (message, id) => {
        const state = fromBinary(TaskSchema, message).status?.state ?? TaskState.Pending;
        if (!seen && terminal.has(state)) {
          seen = true;
          run.finished++;
          // Done with this watch: reset it as soon as this read is handled
          // (unless the server ended it meanwhile), as the Python SDK does.
          done.add(id);
        }
      },
    );
  };

  let next = 0;
  const worker = async () => {
    while (next < options.tasks && connection.goaways.length === 0) {
      next++;
      await oneTask();
    }
  };
  // A GOAWAY or the connection closing ends the run; calls still open on
  // it may never end.
  const goingAway = new Promise<never>((_resolve, reject) => {
    connection.closed.then(() => reject(new GoingAway()));
    connection.onEachFrame((f) => {
      if (f.type === FrameType.goaway) reject(new GoingAway());
    });
  });
  goingAway.catch(() => {});
  try {
    await Promise.race([Promise.all(Array.from({ length: options.inFlight }, worker)), goingAway]);
  } catch (error) {
    // The caller looks at `goaways`.
    if (!(error instanceof GoingAway)) throw error;
  } finally {
    connection.destroy();
  }
  return run;
}
