/**
 * The virtual clock of a heterogeneous simulation: a request to node i takes
 *   downBytes / download bandwidth + samples / speed + upBytes / upload bandwidth
 * simulated seconds (real frame sizes, real step counts from the reply), and a node is selectable only
 * while its profile says it is online. Pure: time moves only when an engine advances it.
 */
import type { RequestCost, SimulatedClock } from '../engine/virtual-time.js';
import { isOnline, nextOnline, type DeviceProfile } from './profiles.js';

export class VirtualClock implements SimulatedClock {
  private t = 0;

  constructor(private readonly profiles: readonly DeviceProfile[]) {}

  now(): number {
    return this.t;
  }

  advanceTo(t: number): void {
    if (!Number.isFinite(t)) throw new Error(`virtual clock: cannot advance to ${t}`);
    if (t > this.t) this.t = t;
  }

  private profile(nodeId: number): DeviceProfile {
    const p = this.profiles[nodeId];
    if (!p) throw new Error(`virtual clock: node ${nodeId} has no device profile (${this.profiles.length} profiles)`);
    return p;
  }

  online(ids: readonly number[]): number[] {
    return ids.filter((id) => isOnline(this.profile(id), this.t));
  }

  nextOnline(ids: readonly number[]): number {
    let best = Infinity;
    for (const id of ids) {
      const p = this.profile(id);
      if (!isOnline(p, this.t)) best = Math.min(best, nextOnline(p, this.t));
    }
    return best;
  }

  duration(c: RequestCost): number {
    const p = this.profile(c.nodeId);
    return c.downBytes / p.downloadBytesPerSecond + c.samples / p.samplesPerSecond + c.upBytes / p.uploadBytesPerSecond;
  }
}
