/** FedBuff's options as one zod fragment, shared by the simulation options and the deployed run config. */
import { z } from 'zod';

export const fedBuffFields = {
  /** 'async': FedBuff with bufferSize (K) updates per fusion, concurrency nodes training, serverLr. */
  mode: z.enum(['sync', 'async']).default('sync'),
  bufferSize: z.number().int().min(1).optional(),
  concurrency: z.number().int().min(1).optional(),
  serverLr: z.number().gt(0).lte(100).optional(),
};
