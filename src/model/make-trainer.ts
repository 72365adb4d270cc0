/** Picks the trainer for a model: the dense engine when it can run the model exactly, else tfjs. */
import type { ModelSpec } from './spec.js';
import { asDenseNet } from './spec.js';
import type { LocalTrainer } from './trainer.js';
import { EngineTrainer } from './engine-trainer.js';
import { TfjsTrainer } from './tfjs-trainer.js';
import { ensureTfjs } from './tfjs.js';
import { selectKernels } from '../nn/kernels-select.js';
import { denseUnsupportedReason } from '../nn/dense.js';

export type TrainerChoice = 'auto' | 'engine' | 'tfjs';

export async function makeTrainer(spec: ModelSpec, choice: TrainerChoice = 'auto'): Promise<LocalTrainer> {
  const dense = asDenseNet(spec);
  const engineOk = dense !== null && denseUnsupportedReason(dense) === null;
  if (choice === 'engine' && !engineOk) throw new Error(`the dense engine cannot train model ${spec.name}; use the tfjs trainer`);
  if (engineOk && choice !== 'tfjs') return new EngineTrainer(dense!, await selectKernels());
  await ensureTfjs();
  return TfjsTrainer.create(spec);
}
