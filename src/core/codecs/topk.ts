/**
 * Top-k sparsification (`topk:F`): the ceil(F * size) largest-magnitude values of each tensor, as ascending
 * indices and their values (`<name>#indices` int32, `<name>#values` float32); error feedback on by default.
 */
import { densify, topK, topkCount, type Sparse } from '../compress.js';
import { defineCodec } from './codec.js';

export const topk = defineCodec<{ kind: 'topk'; sparse: Sparse }>({
  kind: 'topk',
  forms: ['topk:F'],
  errorFeedback: true,
  parse(name, arg, fail) {
    if (name !== 'topk' || arg === undefined) return null;
    const fraction = Number(arg);
    if (arg === '' || !(fraction > 0 && fraction <= 1)) fail(`top-k fraction must be in (0, 1], got '${arg}'`);
    return { fraction };
  },
  label: (s) => ({ head: `topk:${s.fraction}`, options: [] }),
  encode: (part, s, slot) => ({ kind: 'topk', sparse: topK(part, topkCount(slot.size, s.fraction)) }),
  check(c, s, slot, bad) {
    const k = topkCount(slot.size, s.fraction);
    const { indices, values } = c.sparse;
    if (indices.length !== k || values.length !== k)
      bad(`has ${indices.length} indices and ${values.length} values, expected ${k} of each`);
    for (let i = 0; i < k; i++) {
      if (indices[i] < 0 || indices[i] >= slot.size) bad(`index ${indices[i]} is outside [0, ${slot.size})`);
      if (i > 0 && indices[i] <= indices[i - 1]) bad('indices must be ascending and unique');
      if (!Number.isFinite(values[i])) bad(`value ${i} is not finite`);
    }
  },
  decode: (c, _s, slot) => densify(c.sparse, slot.size),
  toWire(c, slot) {
    const k = c.sparse.indices.length;
    return [
      { name: `${slot.name}#indices`, dtype: 'int32', shape: [k], data: c.sparse.indices },
      { name: `${slot.name}#values`, dtype: 'float32', shape: [k], data: c.sparse.values },
    ];
  },
  fromWire(slot, take) {
    const indices = take(`${slot.name}#indices`, 'int32').data as Int32Array;
    return { kind: 'topk', sparse: { indices, values: take(`${slot.name}#values`, 'float32').data as Float32Array } };
  },
});
