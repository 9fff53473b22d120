const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

/**
 * A task id as Flame reads it: a 64-bit signed integer in decimal, so "+1"
 * and "01" are task 1. Returns the canonical form ("1"), or undefined when
 * Flame would refuse the text.
 */
export const parseTaskId = (text: string): string | undefined => {
  if (!/^[+-]?\d+$/.test(text)) return undefined;
  const value = BigInt(text);
  return value < I64_MIN || value > I64_MAX ? undefined : value.toString();
};
