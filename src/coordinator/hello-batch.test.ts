import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HelloBatcher } from './hello-batch.js';
import { Store } from './store.js';

const info = { resources: {}, tags: {} };

test('hellos of one turn are committed in one transaction, ids in arrival order, each resolved after it', async () => {
  const store = new Store(':memory:');
  const groups: number[] = [];
  const upsertNodes = store.upsertNodes.bind(store);
  store.upsertNodes = (entries) => {
    groups.push(entries.length);
    return upsertNodes(entries);
  };
  try {
    const hellos = new HelloBatcher(store);
    const ids = ['a', 'b', 'a', 'c'].map((name) => hellos.enrol(name, info));
    assert.equal(store.listNodes().length, 0, 'nothing is written before the turn ends');
    assert.deepEqual(await Promise.all(ids), [0, 1, 0, 2]);
    assert.deepEqual(await hellos.enrol('d', info), 3);
    assert.deepEqual(groups, [4, 1]);
  } finally {
    store.close();
  }
});

test('a hello the store refuses fails alone: the others of its group are enrolled', async () => {
  const store = new Store(':memory:');
  try {
    const hellos = new HelloBatcher(store);
    const outcomes = await Promise.allSettled(['a', '', 'b'].map((name) => hellos.enrol(name, info)));
    assert.deepEqual(outcomes[0], { status: 'fulfilled', value: 0 });
    assert.equal(outcomes[1].status, 'rejected');
    assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /node name/);
    assert.deepEqual(outcomes[2], { status: 'fulfilled', value: 1 });
    assert.deepEqual(
      store.listNodes().map((n) => n.name),
      ['a', 'b'],
    );
  } finally {
    store.close();
  }
});
