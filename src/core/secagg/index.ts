/** Secure aggregation (Bonawitz et al. 2017): fixed-point encoding, Shamir sharing, masks and the protocol. */
export * from './fixed-point.js';
export * from './shamir.js';
export * from './masks.js';
export * from './protocol.js';
export * from './random.js';
export * from './simulate.js';
export * from './codec.js';
export * from './signing.js';
