// One table for the whole run: every figure beside its baseline, the ratio
// and the goal, so a reader sees at a glance what was met.

/** One line of the table. Empty strings print as "-". */
export interface Row {
  case: string;
  figure: string;
  ours: string;
  baseline: string;
  ratio: string;
  goal: string;
  /** "yes" / "no" when there is a goal, "" when the figure is informative only. */
  met: "yes" | "no" | "skipped" | "failed" | "";
}

const headers: Record<keyof Row, string> = {
  case: "case",
  figure: "figure",
  ours: "ours",
  baseline: "baseline",
  ratio: "ratio",
  goal: "goal",
  met: "met?",
};

const columns = Object.keys(headers) as (keyof Row)[];

/** A Markdown table (readable in a terminal too), padded to line up. */
export function formatTable(rows: readonly Row[]): string {
  const cell = (row: Row, key: keyof Row) => row[key] || "-";
  const widths = columns.map((key) =>
    Math.max(headers[key].length, ...rows.map((row) => cell(row, key).length)),
  );
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  return [
    line(columns.map((key) => headers[key])),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map((row) => line(columns.map((key) => cell(row, key)))),
  ].join("\n");
}

/** `ours / baseline` to two decimals, with an "x" so it reads as a ratio. */
export function ratio(ours: number, baseline: number): string {
  if (!Number.isFinite(ours) || !Number.isFinite(baseline) || baseline === 0) return "";
  return `${(ours / baseline).toFixed(2)}x`;
}

/** Whether `value` meets a goal: `>= goal` or `<= goal`. */
export function met(value: number, goal: number, direction: ">=" | "<="): "yes" | "no" {
  return (direction === ">=" ? value >= goal : value <= goal) ? "yes" : "no";
}

export const fmt = {
  rate: (perSecond: number, unit = "calls/s") =>
    `${Math.round(perSecond).toLocaleString("en-US")} ${unit}`,
  ms: (ms: number) => `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`,
  kb: (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`,
  bytesPerItem: (bytes: number) => `${(bytes / 1024).toFixed(2)} KB`,
};
