import { expect } from "vitest";
import { normalClientServed } from "./normal-client.js";
import type { Target } from "./target.js";

/** What an attack leaves for the test: undo whatever it holds open on the server. */
export type Release = () => void | Promise<void>;

/**
 * Runs `attack` against `target` and checks that the server held: a normal
 * client is served while the attack holds what it took and after it let
 * go, the server (and a gateway's upstream) is still running, and its
 * resident memory grew by less than `maxGrowthMiB` at its peak.
 */
export async function expectHeld(
  target: Target,
  attack: () => Promise<Release>,
  maxGrowthMiB: number,
): Promise<{ growthMiB: number }> {
  const server = target.server;
  server.resetPeak();
  const before = server.rss();
  const release = await attack();
  try {
    await normalClientServed(target);
  } finally {
    await release();
  }
  await normalClientServed(target);
  expect(server.alive, `${target.name} still running`).toBe(true);
  expect(target.upstream.alive, "the upstream still running").toBe(true);
  const growthMiB = (server.peakRss() - before) / 2 ** 20;
  expect(growthMiB, `${target.name} peak RSS growth (MiB)`).toBeLessThan(maxGrowthMiB);
  return { growthMiB };
}
