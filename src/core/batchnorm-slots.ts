/**
 * FedBN's split of a model (Li et al. 2021): the slots of every BatchNormalization layer (gamma, beta, moving
 * mean and moving variance), which each node keeps to itself. A BatchNormalization layer is a name prefix with a
 * `moving_mean` tensor (`bn1/moving_mean`); LayerNormalization's gamma and beta have none and stay shared.
 */
import type { TensorSlot } from './params.js';

const layerOf = (name: string) => (name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : name);

/** The slots of the BatchNormalization layers, in layout order; throws when the model has none. */
export function batchNormSlots(layout: readonly TensorSlot[]): TensorSlot[] {
  const layers = new Set(layout.filter((s) => s.name.endsWith('/moving_mean')).map((s) => layerOf(s.name)));
  if (layers.size === 0) {
    throw new Error(
      'FedBN keeps BatchNormalization layers on the nodes, and this model has none (no tensor named .../moving_mean): ' +
        'use a model with BatchNormalization (e.g. --model mobilenet) or another strategy',
    );
  }
  return layout.filter((s) => layers.has(layerOf(s.name)));
}
