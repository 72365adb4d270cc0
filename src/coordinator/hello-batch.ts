/**
 * Group commit for hellos. Enrolling a node is a durable store write (Store.upsertNodes, synchronous=FULL),
 * and the welcome that tells the node its id goes out only once that write is committed. One commit per
 * hello costs an fsync each on the event loop: 10,000 nodes connecting together held the loop for about
 * 25 s, the kernel's accept queue overflowed and connections were reset. Hellos read in the same turn of
 * the event loop are committed together instead, in one transaction, in arrival order.
 */
import type { NodeEnrolment, Store } from './store.js';

interface Pending {
  name: string;
  info: NodeEnrolment;
  resolve: (id: number) => void;
  reject: (e: Error) => void;
}

export class HelloBatcher {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(private readonly store: Store) {}

  /** The node's id once its enrolment is committed (with the other hellos of this turn). */
  enrol(name: string, info: NodeEnrolment): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ name, info, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      // After the poll phase: every hello read in this turn is in the queue by then.
      setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    let ids: number[] | null = null;
    try {
      ids = this.store.upsertNodes(batch.map(({ name, info }) => ({ name, info })));
    } catch {
      // One entry the store refuses must not fail the others: one by one, each gets its own answer.
    }
    batch.forEach((p, i) => {
      if (ids) return p.resolve(ids[i]);
      try {
        p.resolve(this.store.upsertNode(p.name, p.info));
      } catch (e) {
        p.reject(e as Error);
      }
    });
  }
}
