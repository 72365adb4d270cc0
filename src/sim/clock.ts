/**
 * The virtual clock of a heterogeneous simulation: a request to node i takes
 *   downBytes / download bandwidth + samples / speed + upBytes / upload bandwidth
 * simulated seconds (real frame sizes, real step counts from the reply), plus, when the node's link drops
 * mid-round (its profile's dropout, drawn by seed per node and request), the time until it is back; and a node
 * is selectable only while its profile says it is online. Pure: time moves only when an engine advances it.
 */
import type { RequestCost, SimulatedClock } from '../engine/virtual-time.js';
import { Rng } from '../core/rng.js';
import { dropDelay, isOnline, nextOnline, type DeviceProfile } from './profiles.js';

export class VirtualClock implements SimulatedClock {
  private t = 0;
  /** Requests priced per node so far: with the seed, what names each request's drop draw. */
  private readonly requests = new Map<number, number>();
  /** Link drops so far, for the run's report. */
  drops = 0;

  constructor(
    private readonly profiles: readonly DeviceProfile[],
    private readonly seed = 0,
  ) {}

  now(): number {
    return this.t;
  }

  advanceTo(t: number): void {
    if (!Number.isFinite(t)) throw new Error(`virtual clock: cannot advance to ${t}`);
    if (t > this.t) this.t = t;
  }

  private profile(nodeId: number): DeviceProfile {
    const profile = this.profiles[nodeId];
    if (!profile)
      throw new Error(`virtual clock: node ${nodeId} has no device profile (${this.profiles.length} profiles)`);
    return profile;
  }

  online(ids: readonly number[]): number[] {
    return ids.filter((id) => isOnline(this.profile(id), this.t));
  }

  nextOnline(ids: readonly number[]): number {
    let best = Infinity;
    for (const id of ids) {
      const profile = this.profile(id);
      if (!isOnline(profile, this.t)) best = Math.min(best, nextOnline(profile, this.t));
    }
    return best;
  }

  duration(cost: RequestCost): number {
    const profile = this.profile(cost.nodeId);
    const work =
      cost.downBytes / profile.downloadBytesPerSecond +
      cost.samples / profile.samplesPerSecond +
      cost.upBytes / profile.uploadBytesPerSecond;
    if (!profile.dropout) return work;
    const n = this.requests.get(cost.nodeId) ?? 0;
    this.requests.set(cost.nodeId, n + 1);
    const rng = new Rng(this.seed).fork(`drop:${cost.nodeId}:${n}`);
    const away = dropDelay(profile, rng.next(), rng.next());
    if (away > 0) this.drops++;
    return work + away;
  }
}
