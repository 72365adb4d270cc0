/**
 * The simplest transport: nodes hosted in this thread, frames handed over directly (still encoded and
 * decoded, so bytes are counted as on any transport). Used in browsers and for small runs and tests.
 */
import type { Transport } from '../engine/transport.js';
import { TrafficMeter } from '../engine/transport.js';
import type { NodeHost } from '../node/host.js';

export class DirectTransport implements Transport {
  private readonly meter = new TrafficMeter();

  constructor(
    private readonly host: Pick<NodeHost, 'handle'>,
    private readonly ids: number[],
  ) {}

  nodeIds(): number[] {
    return [...this.ids];
  }

  async request(nodeId: number, frame: Uint8Array): Promise<Uint8Array> {
    const reply = await this.host.handle(frame);
    this.meter.count(nodeId, frame.length, reply.length);
    return reply;
  }

  traffic() {
    return this.meter.snapshot();
  }

  async close(): Promise<void> {}
}
