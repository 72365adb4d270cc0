/**
 * Server optimizers: turn the clients' averaged update into the next global model, with explicit state
 * so a coordinator can checkpoint and resume bit-exactly.
 *
 * Two input conventions, exposed as `kind` on every optimizer:
 *  - kind 'delta'    (fedavg, fedavgm, fedadam, fedyogi, fedadagrad): input is Delta = weighted mean of
 *                    (local - global), a pseudo-gradient that already points downhill; new = global + ...
 *  - kind 'gradient' (sgd, adam; FedSGD): input is the weighted mean loss GRADIENT g; new = global - ...
 *
 * Defaults (override any of them by name through `hyper`):
 * | name       | kind     | defaults                                        | source                           |
 * |------------|----------|-------------------------------------------------|----------------------------------|
 * | fedavg     | delta    | eta=1                                           | McMahan 2017 (new = avg of locals)|
 * | fedavgm    | delta    | eta=1, beta=0.9                                 | Hsu et al. 2019 (Flower FedAvgM   |
 * |            |          |                                                 |   defaults to momentum 0 = FedAvg)|
 * | fedadam    | delta    | eta=0.1, beta1=0.9, beta2=0.99, tau=1e-9        | Flower FedAdam                   |
 * | fedyogi    | delta    | eta=0.01, beta1=0.9, beta2=0.99, tau=1e-3       | Flower FedYogi                   |
 * | fedadagrad | delta    | eta=0.1, beta1=0, tau=1e-9                      | Flower FedAdagrad (beta_1=0, so  |
 * |            |          |                                                 |   m = Delta)                     |
 * | sgd        | gradient | lr=0.1, momentum=0                              | tfjs SGD / Momentum optimizer    |
 * | adam       | gradient | lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7      | tfjs / Keras Adam                |
 *
 * FedAdam/FedYogi/FedAdagrad follow Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2,
 * WITHOUT bias correction (as that paper and Flower before PR #4362, which added it to FedAdam only):
 *   m = b1 m + (1-b1) Delta
 *   v = v + Delta^2                                   (adagrad)
 *   v = b2 v + (1-b2) Delta^2                         (adam)
 *   v = v - (1-b2) Delta^2 sign(v - Delta^2)          (yogi)
 *   new = global + eta m / (sqrt(v) + tau)
 * with m0 = 0 and v0 = tau^2: the paper requires v_{-1} >= tau^2; Flower starts v at 0 instead, which
 * differs only in the first rounds and only where Delta^2 is comparable to tau^2.
 * FedAvgM: v = beta v + Delta; new = global + eta v (v0 = 0, which matches Flower's first round v = Delta).
 * SGD: with momentum u = momentum u + g, new = global - lr u (tfjs MomentumOptimizer, no Nesterov);
 *   without it, new = global - lr g.
 * Adam: t = round + 1; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *   new = global - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
 *
 * Precision and determinism: each element is computed in float64 from the Float32 inputs and state;
 * the state slots and the returned model are stored as Float32 (one rounding each). Because the state
 * IS the Float32 slots, restoring from state() reproduces later steps bit for bit. b^t is computed by
 * repeated squaring (plain multiplications) rather than Math.pow, whose accuracy varies by engine.
 */

export type ServerOptName = 'fedavg' | 'fedavgm' | 'fedadam' | 'fedyogi' | 'fedadagrad' | 'sgd' | 'adam';
export type ServerOptKind = 'delta' | 'gradient';
export type HyperKey = 'eta' | 'beta' | 'beta1' | 'beta2' | 'tau' | 'lr' | 'momentum' | 'eps';
export type ServerOptHyper = Partial<Record<HyperKey, number>>;

export interface ServerOptState {
  name: string;
  /** Steps taken so far (Adam's bias-correction step is round + 1). */
  round: number;
  /** Per-parameter buffers (m, v, momentum...), same length as the model; empty before the first step. */
  slots: Record<string, Float32Array>;
  /** Every hyper-parameter in effect, defaults included. */
  hyper: Record<string, number>;
}

export interface ServerOptimizer {
  readonly name: ServerOptName;
  /** 'delta': step takes mean(local - global). 'gradient': step takes the mean loss gradient. */
  readonly kind: ServerOptKind;
  /** Returns the new global model; never mutates `global` or `input`. */
  step(global: Float32Array, input: Float32Array): Float32Array;
  /** A deep copy of everything needed to resume exactly. */
  state(): ServerOptState;
}

interface OptSpec {
  kind: ServerOptKind;
  defaults: Readonly<Record<string, number>>;
  /** Slot names and their initial value, given the resolved hyper-parameters. */
  slots(h: Readonly<Record<string, number>>): Record<string, number>;
}

const SPECS: Readonly<Record<ServerOptName, OptSpec>> = {
  fedavg: { kind: 'delta', defaults: { eta: 1 }, slots: () => ({}) },
  fedavgm: { kind: 'delta', defaults: { eta: 1, beta: 0.9 }, slots: () => ({ momentum: 0 }) },
  fedadam: {
    kind: 'delta',
    defaults: { eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-9 },
    slots: (h) => ({ m: 0, v: h.tau * h.tau }),
  },
  fedyogi: {
    kind: 'delta',
    defaults: { eta: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 },
    slots: (h) => ({ m: 0, v: h.tau * h.tau }),
  },
  fedadagrad: {
    kind: 'delta',
    defaults: { eta: 0.1, beta1: 0, tau: 1e-9 },
    slots: (h) => ({ m: 0, v: h.tau * h.tau }),
  },
  // Plain SGD keeps no buffer, so a momentum-free checkpoint is not the size of the model.
  sgd: {
    kind: 'gradient',
    defaults: { lr: 0.1, momentum: 0 },
    slots: (h): Record<string, number> => (h.momentum > 0 ? { momentum: 0 } : {}),
  },
  adam: {
    kind: 'gradient',
    defaults: { lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-7 },
    slots: () => ({ m: 0, v: 0 }),
  },
};

/** The defaults of each optimizer (documented in the table at the top of this file). */
export const SERVER_OPT_DEFAULTS: Readonly<Record<ServerOptName, Readonly<Record<string, number>>>> =
  Object.fromEntries(Object.entries(SPECS).map(([k, s]) => [k, s.defaults])) as Record<
    ServerOptName,
    Readonly<Record<string, number>>
  >;

export const SERVER_OPT_NAMES = Object.keys(SPECS) as ServerOptName[];

const RANGES: Readonly<Record<HyperKey, { ok: (x: number) => boolean; text: string }>> = {
  eta: { ok: (x) => x > 0, text: '> 0' },
  lr: { ok: (x) => x > 0, text: '> 0' },
  beta: { ok: (x) => x >= 0 && x < 1, text: 'in [0, 1)' },
  beta1: { ok: (x) => x >= 0 && x < 1, text: 'in [0, 1)' },
  beta2: { ok: (x) => x >= 0 && x < 1, text: 'in [0, 1)' },
  momentum: { ok: (x) => x >= 0 && x < 1, text: 'in [0, 1)' },
  // tau / eps keep the denominator away from 0 where the second moment is 0.
  tau: { ok: (x) => x > 0, text: '> 0' },
  eps: { ok: (x) => x > 0, text: '> 0' },
};

function isServerOptName(name: string): name is ServerOptName {
  return Object.prototype.hasOwnProperty.call(SPECS, name);
}

/** b^t for integer t >= 0 by repeated squaring: only IEEE multiplications, so identical on every engine. */
function powInt(b: number, t: number): number {
  let result = 1;
  let base = b;
  let e = t;
  while (e > 0) {
    if (e & 1) result *= base;
    base *= base;
    e = Math.floor(e / 2);
  }
  return result;
}

function resolveHyper(
  name: ServerOptName,
  layers: readonly (Readonly<Record<string, unknown>> | undefined)[],
): Record<string, number> {
  const spec = SPECS[name];
  const out: Record<string, number> = { ...spec.defaults };
  for (const layer of layers) {
    if (!layer) continue;
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined) continue;
      if (!Object.prototype.hasOwnProperty.call(spec.defaults, key)) {
        throw new Error(
          `server optimizer '${name}': unknown hyper-parameter '${key}' (accepted: ${Object.keys(spec.defaults).join(', ')})`,
        );
      }
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new Error(
          `server optimizer '${name}': hyper-parameter '${key}' must be a finite number, got ${String(value)}`,
        );
      }
      const range = RANGES[key as HyperKey];
      if (!range.ok(value))
        throw new Error(`server optimizer '${name}': hyper-parameter '${key}' must be ${range.text}, got ${value}`);
      out[key] = value;
    }
  }
  return out;
}

class ServerOpt implements ServerOptimizer {
  readonly kind: ServerOptKind;
  private round: number;
  private slots: Record<string, Float32Array>;
  private readonly hyper: Readonly<Record<string, number>>;

  constructor(
    readonly name: ServerOptName,
    hyper: Record<string, number>,
    round: number,
    slots: Record<string, Float32Array>,
  ) {
    this.kind = SPECS[name].kind;
    this.hyper = hyper;
    this.round = round;
    this.slots = slots;
  }

  state(): ServerOptState {
    const slots: Record<string, Float32Array> = {};
    for (const [k, s] of Object.entries(this.slots)) slots[k] = new Float32Array(s);
    return { name: this.name, round: this.round, slots, hyper: { ...this.hyper } };
  }

  step(global: Float32Array, input: Float32Array): Float32Array {
    const n = global.length;
    const what = this.kind === 'delta' ? 'avgDelta' : 'gradient';
    if (input.length !== n) {
      throw new Error(`server optimizer '${this.name}': ${what} has length ${input.length} but global has length ${n}`);
    }
    for (const [k, s] of Object.entries(this.slots)) {
      if (s.length !== n) {
        throw new Error(
          `server optimizer '${this.name}': global has length ${n} but state slot '${k}' has length ${s.length}`,
        );
      }
    }
    // Check everything before touching state, so a rejected step leaves the optimizer unchanged.
    for (let j = 0; j < n; j++) {
      if (!Number.isFinite(input[j])) {
        throw new Error(`server optimizer '${this.name}': ${what}[${j}] is ${input[j]} (not finite)`);
      }
    }
    if (Object.keys(this.slots).length === 0) {
      // First step: create the buffers at the model's size (the restore check guarantees round 0 here).
      for (const [k, init] of Object.entries(SPECS[this.name].slots(this.hyper)))
        this.slots[k] = new Float32Array(n).fill(init);
    }
    const out = new Float32Array(n);
    const h = this.hyper;
    const g = global;
    const d = input;
    switch (this.name) {
      case 'fedavg': {
        const eta = h.eta;
        for (let j = 0; j < n; j++) out[j] = g[j] + eta * d[j];
        break;
      }
      case 'fedavgm': {
        const { eta, beta } = h;
        const mom = this.slots.momentum;
        for (let j = 0; j < n; j++) {
          const v = beta * mom[j] + d[j];
          mom[j] = v;
          out[j] = g[j] + eta * v;
        }
        break;
      }
      case 'fedadam':
      case 'fedyogi':
      case 'fedadagrad': {
        const { eta, beta1, tau } = h;
        const c1 = 1 - beta1;
        const beta2 = h.beta2 ?? 0;
        const c2 = 1 - beta2;
        const M = this.slots.m;
        const V = this.slots.v;
        const mode = this.name;
        for (let j = 0; j < n; j++) {
          const dj = d[j];
          const d2 = dj * dj;
          const m = beta1 * M[j] + c1 * dj;
          const vOld = V[j];
          let v: number;
          if (mode === 'fedadam') v = beta2 * vOld + c2 * d2;
          else if (mode === 'fedyogi') v = vOld - c2 * d2 * Math.sign(vOld - d2);
          else v = vOld + d2;
          M[j] = m;
          V[j] = v;
          out[j] = g[j] + (eta * m) / (Math.sqrt(v) + tau);
        }
        break;
      }
      case 'sgd': {
        const { lr, momentum } = h;
        const U = this.slots.momentum;
        if (U) {
          for (let j = 0; j < n; j++) {
            const u = momentum * U[j] + d[j];
            U[j] = u;
            out[j] = g[j] - lr * u;
          }
        } else {
          for (let j = 0; j < n; j++) out[j] = g[j] - lr * d[j];
        }
        break;
      }
      case 'adam': {
        const { lr, beta1, beta2, eps } = h;
        const t = this.round + 1;
        const bc1 = 1 - powInt(beta1, t);
        const bc2 = 1 - powInt(beta2, t);
        const c1 = 1 - beta1;
        const c2 = 1 - beta2;
        const M = this.slots.m;
        const V = this.slots.v;
        for (let j = 0; j < n; j++) {
          const gj = d[j];
          const m = beta1 * M[j] + c1 * gj;
          const v = beta2 * V[j] + c2 * gj * gj;
          M[j] = m;
          V[j] = v;
          out[j] = g[j] - (lr * (m / bc1)) / (Math.sqrt(v / bc2) + eps);
        }
        break;
      }
    }
    this.round++;
    return out;
  }
}

/**
 * Creates a server optimizer. `hyper` overrides defaults by name (unknown keys and non-finite or
 * out-of-range values throw). With `restore` (an earlier state()), the optimizer continues exactly where
 * that one stopped; hyper-parameters come from the checkpoint, then `hyper` overrides them
 * (e.g. to change the learning rate on resume).
 */
export function makeServerOptimizer(
  name: ServerOptName,
  hyper: ServerOptHyper = {},
  restore?: ServerOptState,
): ServerOptimizer {
  if (typeof name !== 'string' || !isServerOptName(name)) {
    throw new Error(`unknown server optimizer '${String(name)}' (known: ${SERVER_OPT_NAMES.join(', ')})`);
  }
  if (!restore) return new ServerOpt(name, resolveHyper(name, [hyper]), 0, {});

  if (restore.name !== name) {
    throw new Error(`server optimizer '${name}': cannot restore from a '${restore.name}' checkpoint`);
  }
  const resolved = resolveHyper(name, [restore.hyper, hyper]);
  const round = restore.round;
  if (!Number.isSafeInteger(round) || round < 0) {
    throw new Error(`server optimizer '${name}': checkpoint round must be an integer >= 0, got ${round}`);
  }
  const expected = Object.keys(SPECS[name].slots(resolved));
  const given = Object.entries(restore.slots ?? {});
  const slots: Record<string, Float32Array> = {};
  let len = -1;
  for (const [k, s] of given) {
    if (!expected.includes(k)) {
      throw new Error(
        `server optimizer '${name}': unexpected state slot '${k}' (expected: ${expected.join(', ') || 'none'})`,
      );
    }
    if (!(s instanceof Float32Array))
      throw new Error(`server optimizer '${name}': state slot '${k}' must be a Float32Array`);
    if (len >= 0 && s.length !== len) {
      throw new Error(
        `server optimizer '${name}': state slots have different lengths (${len} and ${s.length} for '${k}')`,
      );
    }
    len = s.length;
    slots[k] = new Float32Array(s); // copy, so the caller's checkpoint is never mutated by later steps
  }
  // Slots are created on the first step; after that a checkpoint missing one cannot be resumed exactly.
  if (given.length === 0 ? round > 0 && expected.length > 0 : given.length !== expected.length) {
    const missing = expected.filter((k) => !(k in slots));
    throw new Error(
      `server optimizer '${name}': checkpoint at round ${round} lacks state slot(s) ${missing.join(', ')}`,
    );
  }
  return new ServerOpt(name, resolved, round, slots);
}
