import type { SessionSpec } from "@flame-ts/core/gen";
import type { Resources } from "./executors.js";

/** Flame's built-in fallback when a session has no resreq: cpu=1, memory=1 GiB, gpu=0. */
export const DEFAULT_RESREQ: Resources = { cpu: 1n, memory: 1024n * 1024n * 1024n, gpu: 0 };

export interface NormalisedSpec {
  application: string;
  commonData: Uint8Array | undefined;
  minInstances: number;
  maxInstances: number | undefined;
  priority: number;
  resreq: Resources;
}

// Rust's Debug formatting, as Flame's mismatch messages print the values.
const debugResources = (r: Resources) =>
  `Some(ResourceRequirement { cpu: ${r.cpu}, memory: ${r.memory}, gpu: ${r.gpu} })`;
const debugOption = (n: number | undefined) => (n === undefined ? "None" : `Some(${n})`);

/** The spec as stored: a missing resreq becomes the cluster default. */
export const normalise = (spec: SessionSpec, defaultResreq: Resources): NormalisedSpec => ({
  application: spec.application,
  commonData: spec.commonData,
  minInstances: spec.minInstances,
  maxInstances: spec.maxInstances,
  priority: spec.priority,
  resreq: spec.resreq
    ? { cpu: spec.resreq.cpu, memory: spec.resreq.memory, gpu: spec.resreq.gpu }
    : { ...defaultResreq },
});

/**
 * OpenSession's check: compares, in Flame's order, application, resreq,
 * min_instances, max_instances and priority (never common_data), and names
 * the first difference as Flame does:
 * `<field> differs (expected <stored>, got <given>)`.
 */
export const firstDifference = (
  stored: NormalisedSpec,
  given: NormalisedSpec,
): string | undefined => {
  const checks: [string, string, string][] = [
    ["application", `'${stored.application}'`, `'${given.application}'`],
    ["resreq", debugResources(stored.resreq), debugResources(given.resreq)],
    ["min_instances", String(stored.minInstances), String(given.minInstances)],
    ["max_instances", debugOption(stored.maxInstances), debugOption(given.maxInstances)],
    ["priority", String(stored.priority), String(given.priority)],
  ];
  for (const [field, expected, got] of checks) {
    if (expected !== got) return `${field} differs (expected ${expected}, got ${got})`;
  }
  return undefined;
};
