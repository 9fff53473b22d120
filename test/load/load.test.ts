// The load run of load.ts at a size CI can afford (LOAD_TASKS, default
// 2,000); `npm run test:load` runs the full 100,000.
import { expect, it } from "vitest";
import { clean, runLoad } from "./load.js";

const TASKS = Number(process.env.LOAD_TASKS ?? 2_000);

it(`${TASKS} tasks through one client and the emulator: none lost, none duplicated`, async () => {
  const figures = await runLoad(TASKS, 128);
  console.info(`load: ${JSON.stringify(figures)}`);
  expect(figures.lost).toBe(0);
  expect(figures.duplicated).toBe(0);
  expect(figures.wrongOutput).toBe(0);
  expect(figures.succeeded).toBe(TASKS);
  expect(figures.serverTasks).toBe(TASKS);
  expect(figures.serverCreates).toBe(TASKS);
  expect(figures.openStreamsAfter).toBe(0);
  expect(clean(figures)).toBe(true);
});
