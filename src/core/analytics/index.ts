/** Federated analytics' pure part: mergeable per-feature moments, histograms, quantiles and label counts. */
export * from './moments.js';
export * from './histogram.js';
