// Progress of the job: a cli-progress bar when a person is watching (a TTY),
// a few plain lines otherwise, so logs and CI output stay readable.

import cliProgress from "cli-progress";

export interface Progress {
  /** `done` of the `total` tasks have finished. */
  update(done: number): void;
  /** Ends the display (leaves the bar's last state on screen). */
  stop(): void;
}

export interface ProgressOptions {
  /** Where to draw; stderr by default, so stdout carries only the result. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Force the bar (true) or plain lines (false); default: whether the stream is a TTY. */
  tty?: boolean;
  /** Plain mode prints a line each time this fraction of the tasks is done (default 10 %). */
  step?: number;
}

export function createProgress(total: number, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  const tty = options.tty ?? stream.isTTY === true;
  return tty ? barProgress(total, stream) : lineProgress(total, stream, options.step ?? 0.1);
}

function barProgress(total: number, stream: NodeJS.WritableStream): Progress {
  const bar = new cliProgress.SingleBar(
    {
      format: "tasks [{bar}] {value}/{total} {percentage}% | {duration_formatted} | eta {eta}s",
      stream,
      hideCursor: true,
      // Redraw at most ~12 times a second: 1000 tiny tasks must not mean 1000 redraws.
      fps: 12,
      // Keep the bar even when the stream is not a TTY, if the caller forced it.
      noTTYOutput: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  let stopped = false;
  return {
    update(done) {
      if (!stopped) bar.update(done);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}

function lineProgress(total: number, stream: NodeJS.WritableStream, step: number): Progress {
  // Print when `done` crosses the next multiple of step × total, and at the end.
  const every = Math.max(1, Math.ceil(total * step));
  let next = every;
  let last = -1;
  return {
    update(done) {
      if (done === last) return;
      if (done >= next || done === total) {
        last = done;
        next = (Math.floor(done / every) + 1) * every;
        const percent = Math.floor((done * 100) / total);
        stream.write(`tasks ${done}/${total} (${percent}%)\n`);
      }
    },
    stop() {},
  };
}
