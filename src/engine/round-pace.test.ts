import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Strategy, parseStrategy } from './strategy.js';
import type { Transport } from './transport.js';
import { healthyNodes, toyFederation, twoToyRounds } from '../../test/support/toy-federation.js';

const IDS = [0, 1, 2, 3, 4, 5];

/** The toy federation's transport, optionally with a pace that gives the event loop a turn after every request. */
function federation(paced: boolean) {
  const { transport, initial, centralEval } = toyFederation(healthyNodes(IDS.length), IDS);
  const log = { requests: 0, paces: 0, turnAfterRequests: -1 };
  const wrapped: Transport = {
    nodeIds: () => transport.nodeIds(),
    request: (nodeId, frame) => {
      // A task queued with the first request: it runs at the loop's next turn.
      if (log.requests++ === 0) setImmediate(() => (log.turnAfterRequests = log.requests));
      return transport.request(nodeId, frame);
    },
    traffic: () => transport.traffic(),
    close: () => transport.close(),
    ...(paced ? { pace: () => new Promise<void>((resolve) => setImmediate(() => (log.paces++, resolve()))) } : {}),
  };
  return { transport: wrapped, initial, centralEval, log };
}

async function run(strategy: Strategy, paced: boolean) {
  const f = federation(paced);
  return { weights: await twoToyRounds(strategy, f.transport, f.initial, f.centralEval), log: f.log };
}

test('a paced transport gets event-loop turns between the requests of a round, and the same model to the bit', async () => {
  for (const name of ['fedavg', 'fedmedian']) {
    const paced = await run(new Strategy(parseStrategy(name)), true);
    const unpaced = await run(new Strategy(parseStrategy(name)), false);
    assert.ok(paced.log.paces >= IDS.length, `${name}: paced ${paced.log.paces} times`);
    assert.ok(paced.log.turnAfterRequests < IDS.length, `${name}: the loop turned before the last request went out`);
    const unpacedTurn = unpaced.log.turnAfterRequests;
    assert.ok(unpacedTurn === -1 || unpacedTurn >= IDS.length, `${name}: unpaced, every request goes out in one pass`);
    assert.deepEqual(paced.weights, unpaced.weights, name);
  }
});

test('fusing FedAvg as updates arrive gives the batch fusion to the bit', async () => {
  for (const name of ['fedavg', 'fedadam:eta=0.01', 'fedavgm']) {
    const arriving = new Strategy(parseStrategy(name));
    assert.ok(arriving.fusesMeanDelta, name);
    const batch = new Strategy(parseStrategy(name));
    Object.defineProperty(batch, 'fusesMeanDelta', { get: () => false });
    assert.deepEqual((await run(arriving, true)).weights, (await run(batch, false)).weights, name);
  }
  for (const name of ['fedmedian', 'fedavg:clip=1', 'fednova', 'scaffold'])
    assert.equal(new Strategy(parseStrategy(name)).fusesMeanDelta, false, `${name} needs single updates`);
});
