/**
 * A binary min-heap whose items know their own position, so that an item can be removed or
 * re-keyed in O(log n) without a search. The scheduler keeps one per pool (lanes keyed by
 * service) and one over all active lanes (for the virtual-time floor).
 *
 * The position lives on the item through `slot` accessors rather than in a Map: a lane sits in
 * several heaps at once and each heap owns one field of it, which keeps dispatch free of hashing.
 */
export interface HeapSlot<T> {
  /** Position of `item` in this heap, or -1 when it is not in it. */
  get(item: T): number;
  set(item: T, index: number): void;
}

export class IndexedMinHeap<T> {
  private readonly items: T[] = [];

  /** `less(a, b)` must be a strict total order (break ties), or dispatch order is not deterministic. */
  constructor(
    private readonly less: (a: T, b: T) => boolean,
    private readonly slot: HeapSlot<T>,
  ) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  has(item: T): boolean {
    return this.slot.get(item) >= 0;
  }

  push(item: T): void {
    if (this.has(item)) throw new Error('IndexedMinHeap.push: item is already in the heap');
    this.items.push(item);
    this.slot.set(item, this.items.length - 1);
    this.up(this.items.length - 1);
  }

  /** Removes `item` if present; returns whether it was. */
  remove(item: T): boolean {
    const i = this.slot.get(item);
    if (i < 0) return false;
    const last = this.items.pop()!;
    this.slot.set(item, -1);
    if (i < this.items.length) {
      this.items[i] = last;
      this.slot.set(last, i);
      this.restore(i);
    }
    return true;
  }

  /** Re-establishes order after `item`'s key changed (either direction). No-op when absent. */
  update(item: T): void {
    const i = this.slot.get(item);
    if (i >= 0) this.restore(i);
  }

  /** Items in heap order (not sorted); for snapshots and tests. */
  values(): readonly T[] {
    return this.items;
  }

  private restore(i: number): void {
    if (i > 0 && this.less(this.items[i]!, this.items[(i - 1) >> 1]!)) this.up(i);
    else this.down(i);
  }

  private up(i: number): void {
    const items = this.items;
    const item = items[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (!this.less(item, p)) break;
      items[i] = p;
      this.slot.set(p, i);
      i = parent;
    }
    items[i] = item;
    this.slot.set(item, i);
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const item = items[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && this.less(items[r]!, items[l]!) ? r : l;
      const c = items[child]!;
      if (!this.less(c, item)) break;
      items[i] = c;
      this.slot.set(c, i);
      i = child;
    }
    items[i] = item;
    this.slot.set(item, i);
  }
}
