/**
 * A cache bounded by the bytes it holds, evicting the least recently used entry first. Entries larger than
 * the whole budget are not kept at all. Used for data the coordinator derives from requests (test sets,
 * served shards), so no sequence of requests can grow memory past the budget.
 */
export class ByteLru<V> {
  private readonly entries = new Map<string, { value: V; bytes: number }>();
  private held = 0;

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.held;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key); // re-inserted: Map order is recency order
    this.entries.set(key, e);
    return e.value;
  }

  set(key: string, value: V, bytes: number): void {
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.held -= old.bytes;
    }
    if (bytes > this.maxBytes) return;
    while (this.held + bytes > this.maxBytes) {
      const [oldestKey, oldest] = this.entries.entries().next().value!;
      this.entries.delete(oldestKey);
      this.held -= oldest.bytes;
    }
    this.entries.set(key, { value, bytes });
    this.held += bytes;
  }
}
