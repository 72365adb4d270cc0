/**
 * The browser edge node's routes on the coordinator: the page itself at /node/ (the web/node build, served
 * by static-files.ts like the dashboard, with the COOP/COEP headers that make it cross-origin isolated) and the MNIST shard a browser node trains on
 * (GET /v1/node-data/mnist-shard?shard=I/N[:PARTITION]), the same rows `edgefed node --data
 * mnist-partition:I/N` trains on, as an EdgeFed data slice (src/data/slice.ts) with an empty test split.
 * A shard needs an enrolled node's signed request or a token with runs:read. Shards are built one at a time
 * and kept in a cache bounded by bytes, so requests for many different shards cannot grow memory.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { fileURLToPath } from 'node:url';
import { CROSS_ORIGIN_ISOLATION, registerStaticDir } from './static-files.js';
import { encodeSlice } from '../data/slice.js';
import { subset } from '../data/types.js';
import { parsePartitionSpec } from '../core/partition.js';
import { parseShardSpec } from '../node/local-data.js';
import { mnistShard } from '../node/data.js';
import { ByteLru } from './byte-lru.js';
import { nodeOr } from './route-policy.js';

/** Where scripts/build-web.mjs puts the browser node page. */
export const NODE_PAGE_DIST = fileURLToPath(new URL('../../web/node/dist/', import.meta.url));

/** Bytes of encoded shards kept (one whole-MNIST shard, N=1, is 188 MB). */
export const SHARD_CACHE_BYTES = 200 * 1024 * 1024;

const badRequest = (reply: FastifyReply, message: string) =>
  reply.code(400).send({ error: { code: 'bad_request', message } });

export function registerNodePage(app: FastifyInstance, distDir = NODE_PAGE_DIST): ByteLru<Uint8Array> {
  // Cross-origin isolated, always: the page then trains on every core (wasm threads on a shared memory),
  // and it loads nothing but its own files and the coordinator's API, which isolation does not restrict.
  registerStaticDir(app, {
    prefix: '/node',
    dir: distDir,
    notBuilt: 'the browser node page is not built: run `npm run build:web`',
    headers: CROSS_ORIGIN_ISOLATION,
  });

  // Browser nodes of one federation usually ask for shards of the same split.
  const cache = new ByteLru<Uint8Array>(SHARD_CACHE_BYTES);
  let building: Promise<unknown> = Promise.resolve();
  app.get('/v1/node-data/mnist-shard', nodeOr('runs:read'), async (req, reply) => {
    const text = (req.query as { shard?: unknown }).shard;
    if (typeof text !== 'string') return badRequest(reply, 'shard=I/N[:PARTITION] is required');
    let shard;
    try {
      shard = parseShardSpec(text, 'shard');
      parsePartitionSpec(shard.partition);
    } catch (e) {
      return badRequest(reply, (e as Error).message);
    }
    if (shard.count > 60_000)
      return badRequest(reply, `shard: N=${shard.count} is more shards than MNIST has training images`);
    const key = `${shard.index}/${shard.count}:${shard.partition}`;
    const build = () => {
      const have = cache.get(key);
      if (have) return have;
      const train = mnistShard(shard);
      const bytes = encodeSlice({ train, test: subset(train, []) });
      cache.set(key, bytes, bytes.byteLength);
      return bytes;
    };
    const next = building.then(build); // one build at a time: peak memory is one shard, not one per request
    building = next.catch(() => undefined);
    let bytes: Uint8Array;
    try {
      bytes = await next;
    } catch (e) {
      return badRequest(reply, `shard ${text}: ${(e as Error).message}`);
    }
    return reply.type('application/octet-stream').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });
  return cache;
}
