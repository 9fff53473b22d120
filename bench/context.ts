// What every case is given: the run mode, sizes from the command line, and a
// logger for progress lines (the table is printed once, at the end).
import type { Row } from "./table.js";

export interface BenchContext {
  /** `--smoke`: a tiny size of everything, to prove each case still runs. */
  smoke: boolean;
  /** `--<flag> N` from the command line, else `full` (or `smoke` in smoke mode). */
  size(flag: string, full: number, smoke: number): number;
  log(message: string): void;
}

export interface BenchCase {
  /** The name `--only` selects. */
  name: string;
  run(ctx: BenchContext): Promise<Row[]>;
}

/** Raised for a case that cannot run here (a missing tool); shown as skipped. */
export class SkipCase extends Error {
  override name = "SkipCase";
}
