/**
 * Flame's List replies come in hash-map or directory order: no order a
 * client may rely on. The emulator shuffles them with a seeded generator
 * (mulberry32), so a test can replay one order by fixing the seed.
 */
export class ListOrder {
  private state: number;

  constructor(private readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** A shuffled copy of `items`. */
  shuffle<T>(items: Iterable<T>): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  }

  /** Back to the first order of the seed. */
  reset(): void {
    this.state = this.seed >>> 0;
  }

  private next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
