/**
 * The `edgefed/browser` entry: the edge-node agent on the browser's platform (its WebSocket, navigator,
 * the training engine on the WASM SIMD or TypeScript kernels) and that engine itself. Nothing here
 * reaches Node.js, tfjs or coordinator code (scripts/check-imports.mjs fails the lint if it would).
 * The kernels module ships as `edgefed/kernels.wasm`; fetch it and pass its bytes to createWasmKernels.
 */
export { AgentCore } from './node/agent-core.js';
export type { AgentEvent, AgentLog, AgentOptions, AgentStats, RequestHandler } from './node/agent-core.js';
export type { Backoff } from './node/reconnect-delay.js';
export type { NodeStateSnapshot, NodeStateStore } from './node/local-state.js';
export { browserPlatform } from './node/platform-browser.js';
export type { AgentPlatform, AgentSocket, AgentSocketEvents, HttpInit, HttpResponse } from './node/platform.js';
export type { NodeResources } from './node/resources.js';
export { csvLocalData, holdOutValidation, parseShardSpec } from './node/local-data.js';
export type { ShardSpec } from './node/local-data.js';
export type { CsvOptions } from './data/csv.js';
export type { LocalData } from './node/host.js';
export type { FeatureStandardization } from './net/node-protocol.js';
export { decodeSlice } from './data/slice.js';
export type { MnistSlice } from './data/slice.js';
export type { Dataset } from './data/types.js';

export { EngineTrainer } from './model/engine-trainer.js';
export { builtinModel, engineUnsupportedReason, BUILTIN_MODELS } from './model/spec.js';
export type { ModelSpec, LayerSpec } from './model/spec.js';
export type {
  LocalTrainer,
  TrainConfig,
  Metrics,
  TrainOutcome,
  GradientOutcome,
  EvalOutcome,
} from './model/trainer.js';
export type { Activation, DenseLayer, DenseNetSpec, Loss } from './nn/dense.js';
export type { SeqLayer, SeqNetSpec } from './nn/seqnet.js';
export type { OptimizerConfig, OptimizerName } from './nn/optimizer.js';
export type { Kernels } from './nn/kernels.js';
export { jsKernels } from './nn/kernels-js.js';
export {
  createWasmKernels,
  wasmSimdSupported,
  wasmRelaxedSimdSupported,
  wasmThreadsSupported,
} from './nn/kernels-wasm.js';
export type { WasmKernels, WasmKernelsOptions, WasmKernelsName, GemmPool } from './nn/kernels-wasm.js';
export { createThreadedWasmKernels, spawnWebWorker } from './nn/kernels-wasm-threads.js';
export type { KernelThread, ThreadedWasmKernels } from './nn/kernels-wasm-threads.js';
// Types the browser API names (signing, node-state training, recurrent layers).
export type { CryptoImpl } from './core/identity.js';
export type { LocalStateKind, WeightRange } from './model/trainer.js';
export type { CellActivation, RecurrentActivation } from './nn/recurrent.js';
export type { VisionLayer } from './nn/vision-ops.js';
