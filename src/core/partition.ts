/**
 * Partitioners: split a dataset's example indices across N edge nodes, IID or in the standard
 * non-IID ways of the federated-learning literature. Pure functions (no I/O, no Node APIs), so the
 * same code runs in the coordinator, in simulation and in browsers. Every random choice comes from
 * the Rng passed in, so the same seed gives the same split.
 *
 * Spec syntax (parsePartitionSpec):
 *   iid                         uniform random split, sizes differ by at most one
 *   shards:K                    McMahan et al. 2017: sort by label, cut N*K shards, K per node
 *   dirichlet:ALPHA[:MIN]       label skew, per-class proportions ~ Dir(ALPHA) (NIID-Bench, Li et al. 2022)
 *   quantity:ALPHA[:MIN]        size skew, node sizes ~ Dir(ALPHA), labels stay ~IID
 *   feature:NAME[:ranges|kmeans] split by a scalar feature: equal-count value ranges or 1-D k-means
 *   natural:COLUMN              one group per id value (e.g. device or writer), groups never split
 */
import { joinInto } from './concat.js';
import type { Rng } from './rng.ts';

export type FeatureSplitMethod = 'ranges' | 'kmeans';

export type PartitionSpec =
  | { kind: 'iid' }
  | { kind: 'shards'; shardsPerNode: number }
  | { kind: 'dirichlet'; alpha: number; minSize: number }
  | { kind: 'quantity'; alpha: number; minSize: number }
  | { kind: 'feature'; name: string; method: FeatureSplitMethod }
  | { kind: 'natural'; column: string };

export type PartitionKind = PartitionSpec['kind'];

export interface PartitionInput {
  /** One label per example; its length is the number of examples n. Class indices when numClasses > 0. */
  labels: ArrayLike<number>;
  /** Number of classes; 0 for regression targets (label-based kinds then refuse). */
  numClasses: number;
  /** Scalar feature value per example, required by feature:* specs. */
  feature?: ArrayLike<number>;
  /** Group id per example, required by natural:* specs. */
  ids?: ArrayLike<string | number>;
}

/** Default minimum examples per node for dirichlet and quantity, as in NIID-Bench. */
export const DEFAULT_MIN_SIZE = 10;
/** Redraws of the label-Dirichlet split before giving up on the minimum size. */
export const MAX_DIRICHLET_ATTEMPTS = 1000;
/** Lloyd iterations for feature k-means; 1-D Lloyd converges quickly, this only bounds the worst case. */
export const MAX_KMEANS_ITERATIONS = 100;

const SPEC_SYNTAX =
  'iid, shards:K, dirichlet:ALPHA[:MIN], quantity:ALPHA[:MIN], feature:NAME[:ranges|kmeans], natural:COLUMN';

// ---------------------------------------------------------------------------------------------
// Spec parsing

const DECIMAL = /^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const NON_NEGATIVE_INTEGER = /^[+]?\d+$/;

export function parsePartitionSpec(text: string): PartitionSpec {
  const fail = (problem: string): never => {
    // JSON quoting keeps the message on one line whatever the spec text holds.
    throw new Error(`bad partition spec ${JSON.stringify(text)}: ${problem}`);
  };
  if (typeof text !== 'string') return fail(`expected a string, got ${typeof text}`);
  const trimmed = text.trim();
  if (trimmed === '') return fail(`empty spec (expected one of ${SPEC_SYNTAX})`);
  const [kind, ...args] = trimmed.split(':');
  const expectFields = (min: number, max: number, usage: string): void => {
    if (args.length < min) fail(`missing field (expected ${usage})`);
    if (args.length > max) fail(`too many fields (expected ${usage})`);
  };
  const positiveNumber = (field: string, label: string): number => {
    const value = DECIMAL.test(field) ? Number(field) : NaN;
    if (!Number.isFinite(value)) fail(`${label} must be a number, got ${JSON.stringify(field)}`);
    if (!(value > 0)) fail(`${label} must be > 0, got ${field}`);
    return value;
  };
  const integerAtLeast = (field: string, label: string, min: number): number => {
    const value = NON_NEGATIVE_INTEGER.test(field) ? Number(field) : NaN;
    if (!Number.isSafeInteger(value)) fail(`${label} must be a whole number, got ${JSON.stringify(field)}`);
    if (value < min) fail(`${label} must be >= ${min}, got ${field}`);
    return value;
  };
  const name = (field: string, label: string): string => {
    if (field.trim() === '') fail(`${label} must not be empty`);
    return field;
  };

  switch (kind) {
    case 'iid':
      expectFields(0, 0, 'iid');
      return { kind: 'iid' };
    case 'shards':
      expectFields(1, 1, 'shards:K');
      return { kind: 'shards', shardsPerNode: integerAtLeast(args[0], 'K', 1) };
    case 'dirichlet':
    case 'quantity': {
      expectFields(1, 2, `${kind}:ALPHA[:MIN]`);
      const alpha = positiveNumber(args[0], 'ALPHA');
      const minSize = args.length > 1 ? integerAtLeast(args[1], 'MIN', 0) : DEFAULT_MIN_SIZE;
      return { kind, alpha, minSize };
    }
    case 'feature': {
      expectFields(1, 2, 'feature:NAME[:ranges|kmeans]');
      const method = args[1] ?? 'ranges';
      if (method !== 'ranges' && method !== 'kmeans') {
        return fail(`unknown feature split method ${JSON.stringify(method)} (expected ranges or kmeans)`);
      }
      return { kind: 'feature', name: name(args[0], 'NAME'), method };
    }
    case 'natural':
      expectFields(1, 1, 'natural:COLUMN');
      return { kind: 'natural', column: name(args[0], 'COLUMN') };
    default:
      return fail(`unknown kind ${JSON.stringify(kind)} (expected one of ${SPEC_SYNTAX})`);
  }
}

/** Canonical text of a spec; parsePartitionSpec(formatPartitionSpec(s)) gives s back. */
export function formatPartitionSpec(spec: PartitionSpec): string {
  switch (spec.kind) {
    case 'iid':
      return 'iid';
    case 'shards':
      return `shards:${spec.shardsPerNode}`;
    case 'dirichlet':
    case 'quantity':
      return spec.minSize === DEFAULT_MIN_SIZE
        ? `${spec.kind}:${spec.alpha}`
        : `${spec.kind}:${spec.alpha}:${spec.minSize}`;
    case 'feature':
      return spec.method === 'ranges' ? `feature:${spec.name}` : `feature:${spec.name}:${spec.method}`;
    case 'natural':
      return `natural:${spec.column}`;
    default:
      return JSON.stringify(spec);
  }
}

// ---------------------------------------------------------------------------------------------
// Partitioning

type Fail = (problem: string) => never;

/**
 * Splits example indices 0..n-1 (n = input.labels.length) across numNodes nodes. Returns one
 * ascending Int32Array per node; together they are disjoint and cover every index exactly once.
 * Advances rng; fork it first if the caller's stream must not move.
 */
export function partition(spec: PartitionSpec, input: PartitionInput, numNodes: number, rng: Rng): Int32Array[] {
  const fail: Fail = (problem) => {
    throw new Error(`partition ${JSON.stringify(formatPartitionSpec(spec))}: ${problem}`);
  };
  if (!Number.isInteger(numNodes) || numNodes < 1) fail(`number of nodes must be a whole number >= 1, got ${numNodes}`);
  if (!input || !input.labels || typeof input.labels.length !== 'number') fail('input.labels is missing');
  const n = input.labels.length;
  if (n < numNodes) fail(`too few examples: ${n} examples for ${numNodes} nodes (need at least one per node)`);

  let nodeOf: Int32Array;
  switch (spec.kind) {
    case 'iid':
      nodeOf = splitIid(n, numNodes, rng);
      break;
    case 'shards':
      nodeOf = splitShards(spec.shardsPerNode, checkedLabels(input, fail), input.numClasses, numNodes, rng, fail);
      break;
    case 'dirichlet':
      nodeOf = splitLabelDirichlet(
        spec.alpha,
        spec.minSize,
        checkedLabels(input, fail),
        input.numClasses,
        numNodes,
        rng,
        fail,
      );
      break;
    case 'quantity':
      nodeOf = splitQuantity(spec.alpha, spec.minSize, n, numNodes, rng, fail);
      break;
    case 'feature': {
      const values = checkedFeature(input, spec.name, n, fail);
      nodeOf =
        spec.method === 'kmeans'
          ? splitFeatureKmeans(values, spec.name, numNodes, rng, fail)
          : splitFeatureRanges(values, numNodes, rng);
      break;
    }
    case 'natural':
      nodeOf = splitNatural(checkedIds(input, spec.column, n, fail), numNodes, fail);
      break;
    default:
      return fail(`unknown partition kind ${JSON.stringify((spec as { kind: unknown }).kind)}`);
  }
  return nodeListsFromAssignment(nodeOf, numNodes);
}

/** Every splitter yields node-of-example; listing indices in ascending order makes each list sorted. */
function nodeListsFromAssignment(nodeOf: Int32Array, numNodes: number): Int32Array[] {
  const sizes = new Int32Array(numNodes);
  for (let i = 0; i < nodeOf.length; i++) sizes[nodeOf[i]]++;
  const parts = Array.from(sizes, (size) => new Int32Array(size));
  const fill = new Int32Array(numNodes);
  for (let i = 0; i < nodeOf.length; i++) {
    const node = nodeOf[i];
    parts[node][fill[node]++] = i;
  }
  return parts;
}

/** Gives node j the examples at positions [floor(j*n/N), floor((j+1)*n/N)) of order: sizes differ by at most one. */
function assignEvenRuns(order: ArrayLike<number>, numNodes: number, nodeOf: Int32Array): void {
  const n = order.length;
  for (let node = 0; node < numNodes; node++) {
    const end = Math.floor(((node + 1) * n) / numNodes);
    for (let pos = Math.floor((node * n) / numNodes); pos < end; pos++) nodeOf[order[pos]] = node;
  }
}

function checkedLabels(input: PartitionInput, fail: Fail): ArrayLike<number> {
  const { labels, numClasses } = input;
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    fail(
      `needs class labels, but numClasses is ${numClasses} (regression targets: use iid, quantity, feature or natural)`,
    );
  }
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (!Number.isInteger(label) || label < 0 || label >= numClasses) {
      fail(`label of example ${i} is ${label}, expected a class index in [0, ${numClasses})`);
    }
  }
  return labels;
}

function checkedFeature(input: PartitionInput, name: string, n: number, fail: Fail): ArrayLike<number> {
  const values = input.feature;
  if (!values) return fail(`needs input.feature (the value of feature '${name}' per example), but none was given`);
  if (values.length !== n) fail(`input.feature has ${values.length} values but there are ${n} examples`);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(values[i]))
      fail(`feature '${name}' of example ${i} is ${values[i]}, expected a finite number`);
  }
  return values;
}

function checkedIds(input: PartitionInput, column: string, n: number, fail: Fail): ArrayLike<string | number> {
  const ids = input.ids;
  if (!ids) return fail(`needs input.ids (the value of column '${column}' per example), but none was given`);
  if (ids.length !== n) fail(`input.ids has ${ids.length} values but there are ${n} examples`);
  for (let i = 0; i < n; i++) {
    const id = ids[i];
    const ok = typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
    if (!ok) fail(`column '${column}' of example ${i} is ${String(id)}, expected a string or finite number`);
  }
  return ids;
}

function splitIid(n: number, numNodes: number, rng: Rng): Int32Array {
  const nodeOf = new Int32Array(n);
  assignEvenRuns(rng.permutation(n), numNodes, nodeOf);
  return nodeOf;
}

/** Example indices grouped by class, each group in the order given (a stable counting sort). */
function groupByClass(order: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number): Int32Array[] {
  const counts = new Int32Array(numClasses);
  for (let i = 0; i < order.length; i++) counts[labels[order[i]]]++;
  const groups = Array.from(counts, (count) => new Int32Array(count));
  const fill = new Int32Array(numClasses);
  for (let i = 0; i < order.length; i++) {
    const index = order[i];
    const label = labels[index];
    groups[label][fill[label]++] = index;
  }
  return groups;
}

function splitShards(
  shardsPerNode: number,
  labels: ArrayLike<number>,
  numClasses: number,
  numNodes: number,
  rng: Rng,
  fail: Fail,
): Int32Array {
  const n = labels.length;
  const numShards = numNodes * shardsPerNode;
  if (n < numShards)
    fail(
      `too few examples: ${n} examples for ${numNodes} nodes x ${shardsPerNode} shards (need at least ${numShards})`,
    );
  // Shuffling before the (stable) sort by label makes which examples of a class share a shard random too.
  const sortedByLabel = joinInto(new Int32Array(n), groupByClass(rng.permutation(n), labels, numClasses));
  const shardOrder = rng.permutation(numShards);
  const nodeOf = new Int32Array(n);
  for (let pos = 0; pos < numShards; pos++) {
    const shard = shardOrder[pos];
    const node = Math.floor(pos / shardsPerNode);
    const end = Math.floor(((shard + 1) * n) / numShards);
    for (let k = Math.floor((shard * n) / numShards); k < end; k++) nodeOf[sortedByLabel[k]] = node;
  }
  return nodeOf;
}

/**
 * NIID-Bench label skew: for each class, proportions over nodes ~ Dir(alpha) cut that class's
 * shuffled examples. As in NIID-Bench, nodes already holding their even share n/N get no more
 * examples of later classes (keeps sizes from running away), and the whole split is redrawn until
 * every node has at least minSize examples.
 */
function splitLabelDirichlet(
  alpha: number,
  minSize: number,
  labels: ArrayLike<number>,
  numClasses: number,
  numNodes: number,
  rng: Rng,
  fail: Fail,
): Int32Array {
  const n = labels.length;
  if (n < numNodes * minSize) {
    fail(`too few examples: ${n} examples cannot give each of ${numNodes} nodes at least MIN=${minSize}`);
  }
  const byClass = groupByClass(
    Array.from({ length: n }, (_, i) => i),
    labels,
    numClasses,
  );
  const evenShare = n / numNodes;
  const nodeOf = new Int32Array(n);
  const sizes = new Int32Array(numNodes);
  let bestSmallest = 0;
  for (let attempt = 0; attempt < MAX_DIRICHLET_ATTEMPTS; attempt++) {
    sizes.fill(0);
    for (const members of byClass) {
      rng.shuffle(members);
      const proportions = rng.dirichlet(alpha, numNodes);
      let total = 0;
      for (let node = 0; node < numNodes; node++) {
        if (sizes[node] >= evenShare) proportions[node] = 0;
        total += proportions[node];
      }
      if (!(total > 0)) {
        // All the drawn mass fell on full nodes (tiny alpha): share evenly among the rest instead.
        total = 0;
        for (let node = 0; node < numNodes; node++) {
          proportions[node] = sizes[node] < evenShare ? 1 : 0;
          total += proportions[node];
        }
      }
      // Cut points floor(cumsum(p) * m), as NIID-Bench does with np.split.
      const m = members.length;
      let cumulative = 0;
      let start = 0;
      for (let node = 0; node < numNodes; node++) {
        cumulative += proportions[node] / total;
        const end = node === numNodes - 1 ? m : Math.max(start, Math.min(m, Math.floor(cumulative * m)));
        for (let k = start; k < end; k++) nodeOf[members[k]] = node;
        sizes[node] += end - start;
        start = end;
      }
    }
    const smallest = Math.min(...sizes);
    if (smallest >= minSize) return nodeOf;
    bestSmallest = Math.max(bestSmallest, smallest);
  }
  return fail(
    `could not give each of ${numNodes} nodes at least MIN=${minSize} examples in ${MAX_DIRICHLET_ATTEMPTS} draws ` +
      `(best smallest node: ${bestSmallest}); lower MIN, raise ALPHA or use fewer nodes`,
  );
}

/**
 * Quantity skew: every node first gets minSize examples, the remaining n - N*minSize are split by
 * Dir(alpha) proportions; examples are dealt at random so label mixes stay ~IID. Reserving the
 * minimum (instead of NIID-Bench's redraw-until-large-enough) never fails on many nodes or small alpha.
 */
function splitQuantity(alpha: number, minSize: number, n: number, numNodes: number, rng: Rng, fail: Fail): Int32Array {
  const reserved = numNodes * minSize;
  if (n < reserved)
    fail(`too few examples: ${n} examples cannot give each of ${numNodes} nodes at least MIN=${minSize}`);
  const unreserved = n - reserved;
  const proportions = rng.dirichlet(alpha, numNodes);
  const order = rng.permutation(n);
  const nodeOf = new Int32Array(n);
  let cumulative = 0;
  let unreservedStart = 0;
  let pos = 0;
  for (let node = 0; node < numNodes; node++) {
    cumulative += proportions[node];
    const unreservedEnd =
      node === numNodes - 1
        ? unreserved
        : Math.max(unreservedStart, Math.min(unreserved, Math.floor(cumulative * unreserved)));
    const size = minSize + unreservedEnd - unreservedStart;
    unreservedStart = unreservedEnd;
    for (let k = 0; k < size; k++) nodeOf[order[pos++]] = node;
  }
  return nodeOf;
}

/** Equal-count contiguous value ranges, lowest values on node 0; ties are broken at random. */
function splitFeatureRanges(values: ArrayLike<number>, numNodes: number, rng: Rng): Int32Array {
  const n = values.length;
  const tieBreak = rng.permutation(n);
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => values[a] - values[b] || tieBreak[a] - tieBreak[b],
  );
  const nodeOf = new Int32Array(n);
  assignEvenRuns(order, numNodes, nodeOf);
  return nodeOf;
}

/**
 * 1-D k-means with N clusters, one per node, ordered by centre (lowest on node 0). In one
 * dimension every cluster is a contiguous run of the sorted values, so each Lloyd step is a
 * binary search per boundary plus prefix-sum means rather than an n x N distance scan.
 */
function splitFeatureKmeans(
  values: ArrayLike<number>,
  name: string,
  numNodes: number,
  rng: Rng,
  fail: Fail,
): Int32Array {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a] - values[b] || a - b);
  const sorted = Float64Array.from(order, (i) => values[i]);
  let distinct = n > 0 ? 1 : 0;
  for (let k = 1; k < n; k++) if (sorted[k] !== sorted[k - 1]) distinct++;
  if (distinct < numNodes)
    fail(`feature '${name}' has only ${distinct} distinct values, too few for ${numNodes} k-means clusters`);

  const centres = kmeansPlusPlusInit(sorted, numNodes, rng);
  const prefixSum = new Float64Array(n + 1);
  for (let k = 0; k < n; k++) prefixSum[k + 1] = prefixSum[k] + sorted[k];
  let ends = clusterEnds(sorted, centres);
  for (let iteration = 0; iteration < MAX_KMEANS_ITERATIONS; iteration++) {
    let start = 0;
    for (let c = 0; c < numNodes; c++) {
      // An emptied cluster keeps its centre; if it stays empty we report it below.
      if (ends[c] > start) centres[c] = (prefixSum[ends[c]] - prefixSum[start]) / (ends[c] - start);
      start = ends[c];
    }
    centres.sort((a, b) => a - b);
    const next = clusterEnds(sorted, centres);
    const converged = next.every((end, c) => end === ends[c]);
    ends = next;
    if (converged) break;
  }

  const nodeOf = new Int32Array(n);
  let start = 0;
  for (let c = 0; c < numNodes; c++) {
    if (ends[c] === start) {
      fail(
        `k-means on feature '${name}' left cluster ${c} of ${numNodes} empty; use feature:${name}:ranges or fewer nodes`,
      );
    }
    for (let k = start; k < ends[c]; k++) nodeOf[order[k]] = c;
    start = ends[c];
  }
  return nodeOf;
}

/**
 * Greedy k-means++ seeding (as scikit-learn does): the first centre is uniform; for each next one,
 * draw 2 + ln(k) candidates with probability proportional to D^2 and keep the one that lowers the
 * total D^2 most. Plain k-means++ occasionally puts two centres in one tight group and misses a
 * small distant one; the greedy trials make that far rarer.
 */
function kmeansPlusPlusInit(sorted: Float64Array, k: number, rng: Rng): Float64Array {
  const n = sorted.length;
  const trials = 2 + Math.floor(Math.log(k));
  const centres = new Float64Array(k);
  centres[0] = sorted[rng.int(n)];
  const nearestSq = Float64Array.from(sorted, (v) => (v - centres[0]) ** 2);
  for (let c = 1; c < k; c++) {
    let total = 0;
    for (let i = 0; i < n; i++) total += nearestSq[i];
    let bestCandidate = NaN;
    let bestPotential = Infinity;
    for (let t = 0; t < trials; t++) {
      const candidate = sorted[drawProportional(nearestSq, total, rng)];
      let potential = 0;
      for (let i = 0; i < n; i++) potential += Math.min(nearestSq[i], (sorted[i] - candidate) ** 2);
      if (potential < bestPotential) {
        bestPotential = potential;
        bestCandidate = candidate;
      }
    }
    centres[c] = bestCandidate;
    for (let i = 0; i < n; i++) nearestSq[i] = Math.min(nearestSq[i], (sorted[i] - bestCandidate) ** 2);
  }
  return centres.sort();
}

/** Index drawn with probability weights[i] / total, never one of weight 0 (the caller ensures total > 0). */
function drawProportional(weights: Float64Array, total: number, rng: Rng): number {
  const target = rng.next() * total;
  let chosen = -1;
  let cumulative = 0;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] === 0) continue;
    chosen = i;
    cumulative += weights[i];
    if (cumulative > target) break;
  }
  return chosen;
}

/** End position (exclusive) in sorted of each cluster for ascending centres; ties go to the lower centre. */
function clusterEnds(sorted: Float64Array, centres: Float64Array): Int32Array {
  const k = centres.length;
  const ends = new Int32Array(k);
  for (let c = 0; c < k - 1; c++) {
    const boundary = (centres[c] + centres[c + 1]) / 2;
    let lo = c > 0 ? ends[c - 1] : 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid] <= boundary) lo = mid + 1;
      else hi = mid;
    }
    ends[c] = lo;
  }
  ends[k - 1] = sorted.length;
  return ends;
}

/**
 * One group per distinct id; groups never split. Groups sorted by id (numbers ascending, then
 * strings in code-unit order, which is the same in every runtime) are dealt to nodes round-robin.
 */
function splitNatural(ids: ArrayLike<string | number>, numNodes: number, fail: Fail): Int32Array {
  const n = ids.length;
  const groupOf = new Int32Array(n);
  // Keyed by type too, so the number 1 and the string "1" stay different groups.
  const groupIndex = new Map<string, number>();
  const groupIds: (string | number)[] = [];
  for (let i = 0; i < n; i++) {
    const id = ids[i];
    const key = `${typeof id}:${id}`;
    let group = groupIndex.get(key);
    if (group === undefined) {
      group = groupIds.length;
      groupIndex.set(key, group);
      groupIds.push(id);
    }
    groupOf[i] = group;
  }
  if (groupIds.length < numNodes)
    fail(`only ${groupIds.length} distinct ids for ${numNodes} nodes (need at least one group per node)`);
  const ranked = groupIds.map((_, g) => g).sort((a, b) => compareIds(groupIds[a], groupIds[b]));
  const nodeOfGroup = new Int32Array(groupIds.length);
  ranked.forEach((group, rank) => {
    nodeOfGroup[group] = rank % numNodes;
  });
  return groupOf.map((group) => nodeOfGroup[group]);
}

function compareIds(a: string | number, b: string | number): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Reporting

export interface NodePartitionReport {
  node: number;
  size: number;
  /** Examples of each class on this node; empty when numClasses is 0. */
  labelHistogram: number[];
}

export interface PartitionReport {
  numNodes: number;
  numExamples: number;
  numClasses: number;
  globalHistogram: number[];
  nodes: NodePartitionReport[];
  sizes: { min: number; max: number; mean: number; std: number };
  /**
   * Label heterogeneity over non-empty nodes: total-variation distance of each node's label
   * distribution from the global one (0 = same mix, 1 = disjoint classes), and how many classes a
   * node holds on average. Null when there are no classes.
   */
  heterogeneity: { meanTotalVariation: number; maxTotalVariation: number; meanClassesPerNode: number } | null;
}

export function partitionReport(parts: Int32Array[], labels: ArrayLike<number>, numClasses: number): PartitionReport {
  if (!Number.isInteger(numClasses) || numClasses < 0)
    throw new Error(`partitionReport: numClasses must be a whole number >= 0, got ${numClasses}`);
  const globalHistogram: number[] = new Array(numClasses).fill(0);
  const nodes = parts.map((indices, node): NodePartitionReport => {
    const labelHistogram: number[] = new Array(numClasses).fill(0);
    for (const index of indices) {
      if (!(index >= 0 && index < labels.length))
        throw new Error(`partitionReport: node ${node} holds index ${index}, outside 0..${labels.length - 1}`);
      if (numClasses === 0) continue;
      const label = labels[index];
      if (!Number.isInteger(label) || label < 0 || label >= numClasses) {
        throw new Error(
          `partitionReport: label of example ${index} is ${label}, expected a class index in [0, ${numClasses})`,
        );
      }
      labelHistogram[label]++;
      globalHistogram[label]++;
    }
    return { node, size: indices.length, labelHistogram };
  });
  const sizeList = nodes.map((r) => r.size);
  const numExamples = sizeList.reduce((a, b) => a + b, 0);
  const mean = nodes.length > 0 ? numExamples / nodes.length : 0;
  const variance = nodes.length > 0 ? sizeList.reduce((acc, s) => acc + (s - mean) ** 2, 0) / nodes.length : 0;
  const sizes = {
    min: nodes.length > 0 ? Math.min(...sizeList) : 0,
    max: nodes.length > 0 ? Math.max(...sizeList) : 0,
    mean,
    std: Math.sqrt(variance),
  };

  let heterogeneity: PartitionReport['heterogeneity'] = null;
  if (numClasses > 0 && numExamples > 0) {
    let sumTv = 0;
    let maxTv = 0;
    let sumClasses = 0;
    let nonEmpty = 0;
    for (const r of nodes) {
      if (r.size === 0) continue;
      let tv = 0;
      for (let c = 0; c < numClasses; c++)
        tv += Math.abs(r.labelHistogram[c] / r.size - globalHistogram[c] / numExamples);
      tv /= 2;
      sumTv += tv;
      maxTv = Math.max(maxTv, tv);
      sumClasses += r.labelHistogram.filter((count) => count > 0).length;
      nonEmpty++;
    }
    heterogeneity = {
      meanTotalVariation: sumTv / nonEmpty,
      maxTotalVariation: maxTv,
      meanClassesPerNode: sumClasses / nonEmpty,
    };
  }
  return { numNodes: parts.length, numExamples, numClasses, globalHistogram, nodes, sizes, heterogeneity };
}

// ---------------------------------------------------------------------------------------------
// Derived features for image data, which has no named column to split on

export const DERIVED_IMAGE_FEATURES = ['ink', 'rowcenter'] as const;

/**
 * A scalar per example computed from image pixels, for feature:NAME specs on image datasets:
 * `ink` is the mean pixel value (stroke thickness / brightness); `rowcenter` the intensity-weighted
 * mean row index of a square single-channel image (vertical position). Negative pixels count as no
 * ink; an all-dark image gets the middle row.
 */
export function derivedImageFeature(x: Float32Array, featureSize: number, name: string): Float64Array {
  if (!Number.isInteger(featureSize) || featureSize < 1)
    throw new Error(`derivedImageFeature: featureSize must be a whole number >= 1, got ${featureSize}`);
  if (x.length % featureSize !== 0)
    throw new Error(`derivedImageFeature: ${x.length} values is not a whole number of examples of size ${featureSize}`);
  const n = x.length / featureSize;
  const out = new Float64Array(n);
  switch (name) {
    case 'ink':
      for (let e = 0; e < n; e++) {
        let sum = 0;
        for (let k = e * featureSize; k < (e + 1) * featureSize; k++) sum += x[k];
        out[e] = sum / featureSize;
      }
      return out;
    case 'rowcenter': {
      const side = Math.round(Math.sqrt(featureSize));
      if (side * side !== featureSize) {
        throw new Error(
          `derivedImageFeature: 'rowcenter' needs square single-channel images, but ${featureSize} values per example is not a square`,
        );
      }
      for (let e = 0; e < n; e++) {
        let weight = 0;
        let weightedRow = 0;
        const base = e * featureSize;
        for (let row = 0; row < side; row++) {
          let rowInk = 0;
          for (let col = 0; col < side; col++) rowInk += Math.max(0, x[base + row * side + col]);
          weight += rowInk;
          weightedRow += row * rowInk;
        }
        out[e] = weight > 0 ? weightedRow / weight : (side - 1) / 2;
      }
      return out;
    }
    default:
      throw new Error(
        `derivedImageFeature: unknown feature ${JSON.stringify(name)} (expected one of ${DERIVED_IMAGE_FEATURES.join(', ')})`,
      );
  }
}
