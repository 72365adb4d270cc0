/**
 * Picks the trainer for a model: the engine (DenseNet for dense-only models, SeqNet for convolutions,
 * pooling and dropout) when it can run the model exactly, else tfjs (a user's layers it does not know).
 */
import type { ModelSpec } from './spec.js';
import { engineUnsupportedReason } from './spec.js';
import type { LocalTrainer } from './trainer.js';
import { EngineTrainer } from './engine-trainer.js';
import { selectKernels } from '../nn/kernels-select.js';

export type TrainerChoice = 'auto' | 'engine' | 'tfjs';

export async function makeTrainer(spec: ModelSpec, choice: TrainerChoice = 'auto'): Promise<LocalTrainer> {
  const reason = engineUnsupportedReason(spec);
  // The wording predates SeqNet ("dense engine" is the flat-buffer engine); callers and tests match it.
  if (choice === 'engine' && reason !== null)
    throw new Error(`the dense engine cannot train model ${spec.name} (${reason}); use the tfjs trainer`);
  if (reason === null && choice !== 'tfjs') return new EngineTrainer(spec, await selectKernels());
  // tfjs is loaded only when a model needs it: a node training on the engine stays ~100 MB lighter.
  const [{ ensureTfjs }, { TfjsTrainer }] = await Promise.all([import('./tfjs.js'), import('./tfjs-trainer.js')]);
  await ensureTfjs();
  return TfjsTrainer.create(spec);
}
