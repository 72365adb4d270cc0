/** How long a node waits before reconnecting attempt `attempt` (0 for the first retry of an outage). */
export interface Backoff {
  minMs: number;
  maxMs: number;
}

/**
 * The ceiling doubles from min to max; the wait is a random point in its upper half. A coordinator restart drops
 * every node at the same instant: without the random half, 10,000 nodes would knock at the same millisecond on every
 * retry and overflow the listen queue each time. Timing is not a model choice, so it needs no seeded generator.
 */
export function reconnectDelay(attempt: number, backoff: Backoff, random: () => number = Math.random): number {
  const ceiling = Math.min(backoff.maxMs, backoff.minMs * 2 ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
