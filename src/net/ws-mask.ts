/**
 * WebSocket masking four bytes at a time, for the `ws` package. Every frame a client sends is XOR-masked, and
 * without Node's own `http.websocketUnmask` (built in from Node 26.12) or the optional bufferutil addon, `ws`
 * unmasks one byte per loop turn: about 0.15 ms of the coordinator's event loop for each 31 KB update, 1.5 s of
 * a 10,000-node round. `ws` reads `http.websocketMask` / `http.websocketUnmask` when its buffer-util module
 * loads, so importing this module before 'ws' fills them in where Node lacks them; same bytes out, checked
 * against the byte-wise loop in ws-mask.test.ts. Node-only (not for browser bundles).
 */
import { createRequire } from 'node:module';
import http from 'node:http';

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The mask as one 32-bit word that lines up with byte `start` of the payload (little-endian). */
function maskWord(mask: Uint8Array, start: number): number {
  return (
    (mask[start & 3] | (mask[(start + 1) & 3] << 8) | (mask[(start + 2) & 3] << 16) | (mask[(start + 3) & 3] << 24)) >>>
    0
  );
}

/**
 * output[offset + i] = source[i] ^ mask[i & 3] for i < length: byte by byte up to a 4-byte boundary of
 * output, then a word at a time. Source and output may be the same bytes (unmasking in place).
 */
export function xorMask(source: Uint8Array, mask: Uint8Array, output: Uint8Array, offset: number, length: number) {
  let i = 0;
  const aligned = LITTLE_ENDIAN && (source.byteOffset & 3) === ((output.byteOffset + offset) & 3);
  if (aligned && length >= 16) {
    const head = Math.min(length, (4 - ((output.byteOffset + offset) & 3)) & 3);
    for (; i < head; i++) output[offset + i] = source[i] ^ mask[i & 3];
    const words = (length - i) >>> 2;
    const m = maskWord(mask, i);
    const src = new Uint32Array(source.buffer, source.byteOffset + i, words);
    const out = new Uint32Array(output.buffer, output.byteOffset + offset + i, words);
    for (let k = 0; k < words; k++) out[k] = src[k] ^ m;
    i += words * 4;
  }
  for (; i < length; i++) output[offset + i] = source[i] ^ mask[i & 3];
}

/** Unmasks `buffer` in place (what `http.websocketUnmask` does). */
export function unmaskInPlace(buffer: Uint8Array, mask: Uint8Array): void {
  xorMask(buffer, mask, buffer, 0, buffer.length);
}

type MaskHooks = {
  websocketMask?: (source: Uint8Array, mask: Uint8Array, output: Uint8Array, offset: number, length: number) => void;
  websocketUnmask?: (buffer: Uint8Array, mask: Uint8Array) => void;
};

/** Where `ws` reads its masking from (the `http` module object it requires). */
const hooks = http as unknown as MaskHooks;
/** Whether `ws` had already loaded its masking before this module ran (then it keeps its byte-wise loop). */
const wsLoadedFirst = (() => {
  try {
    const req = createRequire(import.meta.url);
    const bufferUtil = req.resolve('ws').replace(/index\.js$/, 'lib/buffer-util.js');
    return req.cache[bufferUtil] !== undefined;
  } catch {
    return false;
  }
})();

const nodeHasThem = hooks.websocketMask !== undefined && hooks.websocketUnmask !== undefined;
if (!nodeHasThem) {
  hooks.websocketMask = xorMask;
  hooks.websocketUnmask = unmaskInPlace;
}

/** How `ws` masks in this process: Node's built-in, this module's word-wise loop, or ws's byte-wise loop. */
export const wsMasking: 'node' | 'word-wise' | 'byte-wise' = nodeHasThem
  ? 'node'
  : wsLoadedFirst
    ? 'byte-wise'
    : 'word-wise';
