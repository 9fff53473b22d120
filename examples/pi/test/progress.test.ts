import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createProgress } from "../src/progress.js";

function sink() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(String(chunk));
      callback();
    },
  });
  return { stream, text: () => chunks.join("") };
}

describe("progress", () => {
  it("prints a plain line every 10% when not on a TTY", () => {
    const out = sink();
    const progress = createProgress(20, { stream: out.stream });
    for (let done = 1; done <= 20; done++) progress.update(done);
    progress.stop();
    const lines = out.text().trimEnd().split("\n");
    expect(lines).toEqual(
      Array.from({ length: 10 }, (_, i) => `tasks ${(i + 1) * 2}/20 (${(i + 1) * 10}%)`),
    );
  });

  it("prints at most once per step even when updates skip ahead, and always the end", () => {
    const out = sink();
    const progress = createProgress(1000, { stream: out.stream });
    for (const done of [1, 99, 100, 100, 101, 350, 999, 1000]) progress.update(done);
    expect(out.text().trimEnd().split("\n")).toEqual([
      "tasks 100/1000 (10%)",
      "tasks 350/1000 (35%)",
      "tasks 999/1000 (99%)",
      "tasks 1000/1000 (100%)",
    ]);
  });

  it("draws a bar when asked to behave as a TTY", () => {
    const out = sink();
    const progress = createProgress(4, { stream: out.stream, tty: true });
    for (let done = 1; done <= 4; done++) progress.update(done);
    progress.stop();
    expect(out.text()).toContain("4/4");
    expect(out.text()).toContain("100%");
  });
});
