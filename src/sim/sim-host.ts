/**
 * The node side of a simulation: one NodeHost serving every virtual node, each node's local data built
 * lazily from the dataset and the node's shard. Worker threads and queue workers (other processes or
 * machines) both host nodes through this.
 */
import type { Dataset } from '../data/types.js';
import { subset } from '../data/types.js';
import { trainValidationSplit } from '../data/split.js';
import { contiguousStart, rowsView } from './shared-data.js';
import { Rng } from '../core/rng.js';
import { makeLayout } from '../core/params.js';
import { tensorSpecs, type ModelSpec } from '../model/spec.js';
import { makeTrainer, type TrainerChoice } from '../model/make-trainer.js';
import type { LocalTrainer } from '../model/trainer.js';
import { trainerLabel } from '../model/trainer-label.js';
import { NodeHost, type LocalData, type NodeAttack } from '../node/host.js';
import { parseLocalDp, type LocalDpSpec } from '../core/local-dp.js';
import type { DpNoiseSource } from '../engine/dp-noise.js';
import { LocalPrivacy } from '../node/local-privacy.js';
import { nodeIdOf, secAggDropouts } from '../engine/secure-messages.js';
import { identityPublicKey, pinnedPeerTrust, simulationIdentityKey } from '../core/secagg/signing.js';
import type { ClientIdentity } from '../core/secagg/protocol.js';

export interface SimHostData {
  data: Dataset;
  parts: Int32Array[];
  validationFraction: number;
  seed: number;
  spec: ModelSpec;
  trainer: TrainerChoice;
  /** Byzantine nodes and their attack, applied node-side (absent = every node honest). */
  attack?: NodeAttack;
  /** Secure aggregation fault injection: fraction of each round's nodes that drop after sharing keys. */
  secaggDropout?: number;
  /** Local DP applied by every node to its own update, with noise from this source. */
  localDp?: { spec: LocalDpSpec; source: DpNoiseSource };
  /** The central test set (shared memory), when this host helps evaluate the global model (central-eval.ts). */
  test?: Dataset;
}

/** The host field for a run's --local-dp (absent without it). */
export function localDpHost(options: { localDp?: string; dpNoise: DpNoiseSource }): Pick<SimHostData, 'localDp'> {
  return options.localDp ? { localDp: { spec: parseLocalDp(options.localDp), source: options.dpNoise } } : {};
}

/** A node's local split, fixed by run seed and node id, so every host builds the same one. */
export function localData(
  data: Dataset,
  rows: Int32Array,
  nodeId: number,
  validationFraction: number,
  seed: number,
): LocalData {
  const source = `${data.source}#node${nodeId}`;
  // A node's rows laid out contiguously (sharePartitioned) are taken as a view: no per-node copy in every worker.
  const start = data.extra ? -1 : contiguousStart(rows);
  const mine = start >= 0 ? rowsView(data, start, rows.length, source) : subset(data, rows, source);
  if (validationFraction <= 0) return { train: mine, validation: subset(mine, []) };
  return trainValidationSplit(mine, validationFraction, new Rng(seed).fork(`split:${nodeId}`));
}

export async function simNodeHost(
  w: SimHostData,
): Promise<{ host: NodeHost; trainerKind: string; trainer: LocalTrainer }> {
  const layout = makeLayout(tensorSpecs(w.spec));
  const trainer = await makeTrainer(w.spec, w.trainer);
  const cache = new Map<number, LocalData>();
  const lazy = {
    get(nodeId: number): LocalData | undefined {
      if (!cache.has(nodeId) && nodeId >= 0 && nodeId < w.parts.length) {
        cache.set(nodeId, localData(w.data, w.parts[nodeId], nodeId, w.validationFraction, w.seed));
      }
      return cache.get(nodeId);
    },
  } as ReadonlyMap<number, LocalData>;
  const dropout = w.secaggDropout;
  const faults = dropout
    ? {
        dropAfterShareKeys: (round: number, nodeId: number, roster: readonly number[]) =>
          secAggDropouts(w.seed, round, roster, dropout).has(nodeId),
      }
    : {};
  const secure = { ...faults, identity: simulationIdentities(w.seed, w.parts.length) };
  const privacy = w.localDp ? new LocalPrivacy(w.localDp.spec, w.localDp.source) : undefined;
  const host = new NodeHost(layout, trainer, lazy, w.attack, secure, privacy);
  return { host, trainerKind: trainerLabel(trainer), trainer };
}

/**
 * Virtual nodes' identities for signed secure aggregation: keys derived from the seed (reproducible runs), and
 * every node pins every other node's key as "enrolled" (the simulation stands in for the PKI the protocol assumes).
 */
export function simulationIdentities(seed: number, nodes: number): (nodeId: number) => ClientIdentity | undefined {
  const publicKeys = new Map<number, Uint8Array>();
  const publicKeyOf = (nodeId: number): Uint8Array | undefined => {
    if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId >= nodes) return undefined;
    let key = publicKeys.get(nodeId);
    if (!key) publicKeys.set(nodeId, (key = identityPublicKey(simulationIdentityKey(seed, nodeId))));
    return key;
  };
  const trust = pinnedPeerTrust((clientId) => publicKeyOf(nodeIdOf(clientId)));
  return (nodeId) => (publicKeyOf(nodeId) ? { secretKey: simulationIdentityKey(seed, nodeId), trust } : undefined);
}
