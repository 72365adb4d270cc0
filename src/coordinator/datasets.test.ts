import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDatasetSpec } from '../data/load.js';
import { DatasetCatalog, DatasetError } from './datasets.js';

test('prepare loads a test split in a worker thread: testSet then serves the same examples from the cache', async () => {
  const catalog = new DatasetCatalog();
  assert.equal(catalog.cachedBytes, 0);
  const first = catalog.prepare('mnist');
  assert.equal(catalog.prepare('mnist'), first, 'a load in progress is shared, not started twice');
  await first;
  assert.ok(catalog.cachedBytes > 0, 'the split is in the cache once prepare resolves');
  const cached = catalog.testSet('mnist', 500);
  const direct = loadDatasetSpec('mnist').test;
  assert.equal(cached.n, 500);
  assert.deepEqual(cached.featureShape, direct.featureShape);
  assert.equal(cached.numClasses, direct.numClasses);
  assert.deepEqual(cached.x, direct.x.subarray(0, cached.x.length));
  assert.deepEqual(cached.y, direct.y.subarray(0, 500));
  await catalog.prepare('mnist'); // already cached: nothing to do
});

test('prepare never rejects: an unknown name or a spec that fails leaves testSet to report it, cache unchanged', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefed-datasets-'));
  try {
    const catalog = new DatasetCatalog({ broken: `idx:${join(dir, 'missing')}` });
    await catalog.prepare('nope');
    await catalog.prepare('broken');
    assert.equal(catalog.cachedBytes, 0);
    assert.throws(
      () => catalog.testSet('broken'),
      (e: unknown) => e instanceof DatasetError && /dataset 'broken' could not be loaded/.test((e as Error).message),
    );
    assert.throws(
      () => catalog.testSet('nope'),
      (e: unknown) => e instanceof DatasetError,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
