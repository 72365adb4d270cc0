/** IEEE half precision: every value to the nearest float16 (half the bytes, ~3 significant digits). */
import { decodeFp16, encodeFp16 } from '../compress.js';
import { defineCodec } from './codec.js';

export const fp16 = defineCodec<{ kind: 'fp16'; half: Uint16Array }>({
  kind: 'fp16',
  forms: ['fp16'],
  errorFeedback: false,
  parse: (name, arg) => (name === 'fp16' && arg === undefined ? {} : null),
  label: () => ({ head: 'fp16', options: [] }),
  encode: (part) => ({ kind: 'fp16', half: encodeFp16(part) }),
  check(c, _s, slot, bad) {
    if (c.half.length !== slot.size) bad(`holds ${c.half.length} values, expected ${slot.size}`);
  },
  decode: (c) => decodeFp16(c.half),
  toWire: (c, slot) => [{ name: slot.name, dtype: 'float16', shape: slot.shape, data: c.half }],
  fromWire: (slot, take) => ({ kind: 'fp16', half: take(slot.name, 'float16', slot.shape).data as Uint16Array }),
});
