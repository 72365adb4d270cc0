/**
 * The browser edge node's routes on the coordinator: the page itself at /node/ (the web/node build, served
 * by static-files.ts like the dashboard) and the MNIST shard a browser node trains on
 * (GET /v1/node-data/mnist-shard?shard=I/N[:PARTITION]), the same rows `edgefed node --data
 * mnist-partition:I/N` trains on, as an EdgeFed data slice (src/data/slice.ts) with an empty test split.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { fileURLToPath } from 'node:url';
import { registerStaticDir } from './static-files.js';
import { encodeSlice } from '../data/slice.js';
import { subset } from '../data/types.js';
import { parsePartitionSpec } from '../core/partition.js';
import { parseShardSpec } from '../node/local-data.js';
import { mnistShard } from '../node/data.js';

/** Where scripts/build-web.mjs puts the browser node page. */
export const NODE_PAGE_DIST = fileURLToPath(new URL('../../web/node/dist/', import.meta.url));

const badRequest = (reply: FastifyReply, message: string) => reply.code(400).send({ error: { code: 'bad_request', message } });

export function registerNodePage(app: FastifyInstance, distDir = NODE_PAGE_DIST): void {
  registerStaticDir(app, { prefix: '/node', dir: distDir, notBuilt: 'the browser node page is not built: run `npm run build:web`' });

  // The last shard served: browser nodes of one federation usually ask for shards of the same split.
  let cached: { key: string; bytes: Uint8Array } | null = null;
  app.get('/v1/node-data/mnist-shard', async (req, reply) => {
    const text = (req.query as { shard?: unknown }).shard;
    if (typeof text !== 'string') return badRequest(reply, 'shard=I/N[:PARTITION] is required');
    let shard;
    try {
      shard = parseShardSpec(text, 'shard');
      parsePartitionSpec(shard.partition);
    } catch (e) {
      return badRequest(reply, (e as Error).message);
    }
    if (shard.count > 60_000) return badRequest(reply, `shard: N=${shard.count} is more shards than MNIST has training images`);
    const key = `${shard.index}/${shard.count}:${shard.partition}`;
    if (cached?.key !== key) {
      let train;
      try {
        train = mnistShard(shard);
      } catch (e) {
        return badRequest(reply, `shard ${text}: ${(e as Error).message}`);
      }
      cached = { key, bytes: encodeSlice({ train, test: subset(train, []) }) };
    }
    return reply.type('application/octet-stream').send(Buffer.from(cached.bytes.buffer, cached.bytes.byteOffset, cached.bytes.byteLength));
  });
}
