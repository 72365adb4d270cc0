/**
 * FedBuff (Nguyen et al. 2022, "Federated Learning with Buffered Asynchronous Aggregation") fusion math.
 * A node trains from the global model of version v_i and returns delta_i = local_i - global_{v_i}; when it
 * arrives the server is at version v, so its staleness is s_i = v - v_i. Every K arrivals the server
 * applies
 *     global <- global + eta_g * (1/K) * sum_i w(s_i) * delta_i,    w(s) = 1 / sqrt(1 + s)
 * (the paper's polynomial staleness scaling with exponent 1/2; unweighted by example counts, as there).
 * Sums run in Float64 in buffer (arrival) order, so a fusion is deterministic for a given order.
 */

/** The staleness weight 1/sqrt(1 + s): 1 for a fresh update, 1/2 at staleness 3. */
export function stalenessWeight(staleness: number): number {
  if (!Number.isInteger(staleness) || staleness < 0)
    throw new Error(`staleness must be a whole number >= 0, got ${staleness}`);
  return 1 / Math.sqrt(1 + staleness);
}

export interface BufferedUpdate {
  delta: Float32Array;
  staleness: number;
}

/** (1/K) sum_i w(s_i) delta_i over the K buffered updates. */
export function bufferedDelta(buffer: readonly BufferedUpdate[]): Float32Array {
  if (buffer.length === 0) throw new Error('bufferedDelta needs at least one update');
  const n = buffer[0].delta.length;
  const acc = new Float64Array(n);
  for (const u of buffer) {
    if (u.delta.length !== n) throw new Error(`bufferedDelta: updates have lengths ${n} and ${u.delta.length}`);
    const w = stalenessWeight(u.staleness);
    for (let j = 0; j < n; j++) acc[j] += w * u.delta[j];
  }
  const out = new Float32Array(n);
  for (let j = 0; j < n; j++) out[j] = acc[j] / buffer.length;
  return out;
}

/** Checks FedBuff's settings: K >= 1 updates per fusion, concurrency >= K, server learning rate > 0. */
export function checkFedBuffOptions(options: { bufferSize: number; concurrency: number; serverLr: number }): void {
  if (!Number.isInteger(options.bufferSize) || options.bufferSize < 1)
    throw new Error(`buffer size K must be a whole number >= 1, got ${options.bufferSize}`);
  if (!Number.isInteger(options.concurrency) || options.concurrency < options.bufferSize) {
    throw new Error(
      `concurrency must be a whole number >= the buffer size K = ${options.bufferSize} (nodes training at once), got ${options.concurrency}`,
    );
  }
  if (!(Number.isFinite(options.serverLr) && options.serverLr > 0))
    throw new Error(`server learning rate must be a number > 0, got ${options.serverLr}`);
}
