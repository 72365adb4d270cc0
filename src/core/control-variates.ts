/**
 * The node- and server-side state updates of SCAFFOLD (Karimireddy et al. 2020, option II control variates)
 * and FedDyn (Acar et al. 2021), over Float32Array. Both change local training by one fixed vector per round
 * added to every local gradient (the "shift"); FedDyn adds a proximal term too (FedProx's path, mu = alpha).
 *
 * SCAFFOLD: shift = c - c_i; after K local SGD steps of rate lr from x to y,
 *   c_i+ = c_i - c + (x - y) / (K lr)      (option II)
 *   upload dc_i = c_i+ - c_i;  server: c += sum_{i in S} dc_i / N   (so c stays the mean of all N c_i).
 * The node stores c_i + dc_i (the same float32 sum the server forms), so with one node c == c_i bit for bit
 * and the shift is exactly zero: SCAFFOLD is then FedAvg, the check that rules out a sign or scale bug.
 *
 * FedDyn: the node keeps g_i (the gradient of its linear term); local objective
 *   L_i(w) - <g_i, w> + alpha/2 ||w - x||^2,  so shift = -g_i and mu = alpha;
 *   after training to y: g_i <- g_i - alpha (y - x).
 *   Server: h <- h - alpha/N sum_{i in S} (y_i - x);  x+ = mean_{i in S} y_i - h / alpha   (uniform mean).
 */

function sameLength(what: string, ...vs: Float32Array[]): number {
  const n = vs[0].length;
  for (const v of vs)
    if (v.length !== n) throw new Error(`${what}: vectors of lengths ${vs.map((u) => u.length).join(', ')} differ`);
  return n;
}

/** SCAFFOLD's gradient correction for a node: c - c_i. */
export function scaffoldShift(server: Float32Array, node: Float32Array): Float32Array {
  const n = sameLength('scaffoldShift', server, node);
  const out = new Float32Array(n);
  for (let j = 0; j < n; j++) out[j] = server[j] - node[j];
  return out;
}

/**
 * SCAFFOLD option II on the node after `steps` local steps of rate `lr` from `global` to `local`: the control
 * delta it uploads and the control it keeps (node + delta, rounded as the server rounds its sum).
 */
export function scaffoldNodeUpdate(
  node: Float32Array,
  server: Float32Array,
  global: Float32Array,
  local: Float32Array,
  steps: number,
  lr: number,
): { delta: Float32Array; next: Float32Array } {
  const n = sameLength('scaffoldNodeUpdate', node, server, global, local);
  if (!Number.isInteger(steps) || steps < 1)
    throw new Error(`SCAFFOLD: local steps must be a whole number >= 1, got ${steps}`);
  if (!(lr > 0)) throw new Error(`SCAFFOLD: local learning rate must be > 0, got ${lr}`);
  const delta = new Float32Array(n);
  const next = new Float32Array(n);
  const scale = 1 / (steps * lr);
  for (let j = 0; j < n; j++) {
    // c_i+ - c_i = -c + (x - y) / (K lr)
    delta[j] = -server[j] + (global[j] - local[j]) * scale;
    next[j] = node[j] + delta[j];
  }
  return { delta, next };
}

/** SCAFFOLD's server control after a round: c + sum(deltas) / population. */
export function scaffoldServerControl(
  server: Float32Array,
  deltas: readonly Float32Array[],
  population: number,
): Float32Array {
  if (deltas.length === 0) throw new Error('scaffoldServerControl: no control deltas');
  if (!Number.isInteger(population) || population < deltas.length) {
    throw new Error(
      `scaffoldServerControl: population ${population} is smaller than the ${deltas.length} nodes that answered`,
    );
  }
  const n = sameLength('scaffoldServerControl', server, ...deltas);
  const acc = new Float64Array(n);
  for (const d of deltas) for (let j = 0; j < n; j++) acc[j] += d[j];
  const out = new Float32Array(n);
  for (let j = 0; j < n; j++) out[j] = server[j] + acc[j] / population;
  return out;
}

/** FedDyn's node state after training from `global` to `local`: g_i - alpha (local - global). */
export function feddynNodeUpdate(
  node: Float32Array,
  alpha: number,
  global: Float32Array,
  local: Float32Array,
): Float32Array {
  const n = sameLength('feddynNodeUpdate', node, global, local);
  const out = new Float32Array(n);
  for (let j = 0; j < n; j++) out[j] = node[j] - alpha * (local[j] - global[j]);
  return out;
}

/** FedDyn's gradient shift for a node: -g_i. */
export function feddynShift(node: Float32Array): Float32Array {
  const out = new Float32Array(node.length);
  for (let j = 0; j < node.length; j++) out[j] = -node[j];
  return out;
}

/** FedDyn's server step: the new h and the next global model (uniform mean of the locals minus h / alpha). */
export function feddynServerStep(
  global: Float32Array,
  h: Float32Array,
  locals: readonly Float32Array[],
  alpha: number,
  population: number,
): { h: Float32Array; model: Float32Array } {
  if (locals.length === 0) throw new Error('feddynServerStep: no local models');
  if (!(alpha > 0)) throw new Error(`feddynServerStep: alpha must be > 0, got ${alpha}`);
  if (!Number.isInteger(population) || population < locals.length) {
    throw new Error(
      `feddynServerStep: population ${population} is smaller than the ${locals.length} nodes that answered`,
    );
  }
  const n = sameLength('feddynServerStep', global, h, ...locals);
  const sumDelta = new Float64Array(n);
  for (const l of locals) for (let j = 0; j < n; j++) sumDelta[j] += l[j] - global[j];
  const nextH = new Float32Array(n);
  const model = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    nextH[j] = h[j] - (alpha * sumDelta[j]) / population;
    model[j] = global[j] + sumDelta[j] / locals.length - nextH[j] / alpha;
  }
  return { h: nextH, model };
}
