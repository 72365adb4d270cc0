/** Federated analytics' pure part: mergeable moments, histograms, quantiles, label counts; additive statistics. */
export * from './moments.js';
export * from './histogram.js';
export * from './additive.js';
