/**
 * int8 quantisation, symmetric, one scale per tensor (`int8`) or per block of N values (`int8-block:N`);
 * rounding to nearest or stochastic (unbiased, seeded). On the wire: the int8 tensor and `<name>#scales`.
 */
import { blockCount, dequantizeInt8, quantizeInt8 } from '../compress.js';
import { defineCodec } from './codec.js';

const MAX_BLOCK = 1 << 24;

export const int8 = defineCodec<{ kind: 'int8'; q: Int8Array; scales: Float32Array }>({
  kind: 'int8',
  forms: ['int8', 'int8-block:N'],
  errorFeedback: false,
  parse(name, arg, fail) {
    if (name === 'int8' && arg === undefined) return {};
    if (name !== 'int8-block' || arg === undefined) return null;
    const block = Number(arg);
    if (!/^\d+$/.test(arg) || !(block >= 1 && block <= MAX_BLOCK))
      fail(`block size must be a whole number in [1, ${MAX_BLOCK}], got '${arg}'`);
    return { block };
  },
  option(key, value, s, fail) {
    if (key !== 'rounding') return false;
    if (value !== 'nearest' && value !== 'stochastic')
      return fail(`rounding must be nearest or stochastic, got '${value}'`);
    s.rounding = value;
    return true;
  },
  label: (s) => ({ head: s.block === 0 ? 'int8' : `int8-block:${s.block}`, options: [`rounding=${s.rounding}`] }),
  encode: (part, s, slot, rng) => ({
    kind: 'int8',
    ...quantizeInt8(part, s.block, s.rounding, rng.fork(`int8:${slot.name}`)),
  }),
  check(c, s, slot, bad) {
    if (c.q.length !== slot.size) bad(`holds ${c.q.length} values, expected ${slot.size}`);
    if (c.q.some((v) => v === -128)) bad('int8 value -128 is outside the symmetric range [-127, 127]');
    const blocks = blockCount(slot.size, s.block);
    if (c.scales.length !== blocks) bad(`has ${c.scales.length} scales, expected ${blocks}`);
    if (c.scales.some((v) => !Number.isFinite(v) || v < 0)) bad('scales must be finite and >= 0');
  },
  decode: (c, s) => dequantizeInt8(c, s.block),
  toWire: (c, slot) => [
    { name: slot.name, dtype: 'int8', shape: slot.shape, data: c.q },
    { name: `${slot.name}#scales`, dtype: 'float32', shape: [c.scales.length], data: c.scales },
  ],
  fromWire(slot, take) {
    const q = take(slot.name, 'int8', slot.shape).data as Int8Array;
    return { kind: 'int8', q, scales: take(`${slot.name}#scales`, 'float32').data as Float32Array };
  },
});
