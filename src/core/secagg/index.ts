/** Secure aggregation (Bonawitz et al. 2017): fixed point (32-bit and wide), Shamir sharing, masks, the protocol. */
export * from './fixed-point.js';
export * from './shamir.js';
export * from './masks.js';
export * from './protocol.js';
export * from './random.js';
export * from './simulate.js';
export * from './codec.js';
export * from './signing.js';
export * from './wide-fixed.js';
