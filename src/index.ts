/**
 * The `edgefed` package entry (Node.js): simulate a federation, start a coordinator or an edge node, and
 * the partitioners, datasets, models and strategies they take. Browser code imports `edgefed/browser`;
 * the pure math is `edgefed/core`.
 */
export { runSimulation, runSimulation as simulate } from './sim/simulate.js';
export type { SimulationResult, AttackSummary } from './sim/simulate.js';
export { SimulationOptionsSchema } from './sim/options.js';
export type { SimulationOptions, ResolvedOptions as ResolvedSimulationOptions } from './sim/options.js';
export type { RoundRecord, RunResult, NodeFailure } from './engine/round-engine.js';

export { startCoordinator } from './coordinator/server.js';
export type { Coordinator, CoordinatorOptions } from './coordinator/server.js';
export { parseRunConfig, RunConfigSchema } from './coordinator/config.js';
export type { RunConfig } from './coordinator/config.js';

export { startNode } from './node/start-node.js';
export { Agent } from './node/agent.js';
export type { AgentEvent, AgentLog, AgentOptions, AgentStats, RequestHandler } from './node/agent.js';
export type { Backoff } from './node/reconnect-delay.js';
export type { NodeStateSnapshot, NodeStateStore } from './node/local-state.js';
export type { LocalStateKind } from './model/trainer.js';
export type { LocalData } from './node/host.js';
export type { FeatureStandardization } from './net/node-protocol.js';

export { partition, parsePartitionSpec, formatPartitionSpec, partitionReport } from './core/partition.js';
export type { PartitionSpec, PartitionKind, PartitionInput, PartitionReport } from './core/partition.js';

export { loadDatasetSpec, loadCsv, DATASET_SPEC_FORMS } from './data/load.js';
export type { LoadedData } from './data/load.js';
export type { CsvDataset, CsvOptions, CsvTask } from './data/csv.js';
export type { StandardizeStats } from './data/split.js';
export { loadMnist } from './data/mnist.js';
export type { Dataset, TrainTestData } from './data/types.js';

export * from './engine/strategies/index.js';
export type { AdaptiveClipConfig } from './engine/dp-adaptive.js';

export { builtinModel, BUILTIN_MODELS, tensorSpecs, initialWeights } from './model/spec.js';
export type { ModelSpec, LayerSpec, BuiltinModel } from './model/spec.js';
export type { Activation, Loss } from './nn/dense.js';
export type { OptimizerConfig, OptimizerName } from './nn/optimizer.js';
export { weightsSha256 } from './model/hash.js';
export { Rng } from './core/rng.js';
export type { BuiltinParams } from './engine/strategies/define.js';
// Types the public API names (coordinator parts, privacy, MQTT), so the API docs and consumers can refer to them.
export type { AuditAction, AuditEntry, AuditLog, RefusalCount } from './coordinator/audit.js';
export type { ApiTokens, Credential, Scope, TokenInfo } from './coordinator/api-tokens.js';
export { SCOPES } from './coordinator/api-tokens.js';
export type { ByteLru } from './coordinator/byte-lru.js';
export type { Access, RouteEntry, RoutePolicy } from './coordinator/route-policy.js';
export type { MqttEndpointOptions } from './coordinator/mqtt-node-connection.js';
export type { LocalDpSpec } from './core/local-dp.js';
export type { PrivacySpentSoFar } from './engine/privacy-ledger.js';
