// Flame lists tasks, sessions and applications in no particular order
// (HashMap order, or whatever the storage engine returns). The client sorts
// them so that two calls list the same things in the same order.

/**
 * Compares two ids: decimal numbers by value (task ids "2" < "10"), then
 * anything else as plain strings after the numbers.
 */
export function compareIds(a: string, b: string): number {
  const da = isDecimal(a);
  const db = isDecimal(b);
  if (da && db) {
    const na = stripZeros(a);
    const nb = stripZeros(b);
    if (na.length !== nb.length) return na.length - nb.length;
  } else if (da !== db) {
    return da ? -1 : 1;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Tasks by id, numerically. Sorts in place and returns the array. */
export function sortById<T extends { id: string }>(items: T[]): T[] {
  return items.sort((x, y) => compareIds(x.id, y.id));
}

/** Oldest first; the same creation time (whole seconds on sqlite and fs) by `key`. */
export function sortByCreation<T extends { creationTime: Date }>(
  items: T[],
  key: (item: T) => string,
): T[] {
  return items.sort(
    (x, y) => x.creationTime.getTime() - y.creationTime.getTime() || compareIds(key(x), key(y)),
  );
}

function isDecimal(id: string): boolean {
  if (id.length === 0) return false;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function stripZeros(id: string): string {
  let i = 0;
  while (i < id.length - 1 && id.charCodeAt(i) === 48) i++;
  return i === 0 ? id : id.slice(i);
}
