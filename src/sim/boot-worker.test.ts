import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import assert from 'node:assert/strict';
import { bootWorker, firstMessage, workerEntry } from './boot-worker.js';

/** A worker module as a data: URL (boot.mjs imports it as it is: no tsx for a non-.ts entry). */
const moduleUrl = (source: string) => `data:text/javascript,${encodeURIComponent(source)}`;

test('workerEntry: the .ts beside a checkout module, the .js beside a built one', () => {
  assert.equal(workerEntry('worker', 'file:///repo/src/sim/pool.ts'), 'file:///repo/src/sim/worker.ts');
  assert.equal(
    workerEntry('verify-worker', 'file:///lib/dist/coordinator/verify-pool.js'),
    'file:///lib/dist/coordinator/verify-worker.js',
  );
});

test('firstMessage: the first message a worker sends, with its workerData and a transferred port', async () => {
  const { port1, port2 } = new MessageChannel();
  const worker = bootWorker(
    moduleUrl(
      "import { parentPort, workerData } from 'node:worker_threads';" +
        "workerData.port.postMessage('on the port');" +
        'parentPort.postMessage({ ready: true, got: workerData.value, entry: workerData.entry.slice(0, 5) });',
    ),
    { value: 42, port: port2 },
    [port2],
  );
  try {
    assert.deepEqual(await firstMessage(worker, 'test worker'), { ready: true, got: 42, entry: 'data:' });
    const onPort = await new Promise((resolve) => port1.once('message', resolve));
    assert.equal(onPort, 'on the port');
  } finally {
    port1.close();
    await worker.terminate();
  }
});

test('firstMessage: a worker that throws while starting rejects with its error, named', async () => {
  const worker = bootWorker(moduleUrl("throw new Error('no kernels here');"));
  await assert.rejects(
    firstMessage(worker, 'test worker'),
    /^Error: test worker failed while starting: no kernels here/,
  );
});

test('firstMessage: a worker that exits before it is ready rejects rather than leaving its caller waiting', async () => {
  const worker = bootWorker(moduleUrl('process.exit(3);'));
  await assert.rejects(
    firstMessage(worker, 'test worker'),
    /^Error: test worker exited \(code 3\) before it was ready$/,
  );
});

test('firstMessage: a worker whose entry does not exist rejects naming it', async () => {
  const worker = bootWorker(workerEntry('no-such-worker', import.meta.url));
  await assert.rejects(firstMessage(worker, 'test worker'), /test worker failed while starting: .*no-such-worker/);
});
