/**
 * Personalised serving (personal-serving.ts) on a real state directory and real served models: Ditto's kept
 * personal model answers in place of the global one, a FedPer head is put on the served global body, and a run
 * without personal state (or another run) gets the global model; each answer names the weights' sha256.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PersonalServing } from './personal-serving.js';
import { NodeStateDir } from './state-file.js';
import { ServedModel } from '../predict/served-model.js';
import { weightsSha256 } from '../model/hash.js';
import { Rng } from '../core/rng.js';
import { initialWeights, tensorSpecs } from '../model/spec.js';
import { headSlots, takeHead, withHead } from '../core/personal-head.js';
import { toyLayout, toySpec } from '../../test/support/toy-federation.js';

const log = { info: () => undefined, warn: () => undefined };

test('personalised serving: Ditto model, FedPer head on the global body, global without personal state', async () => {
  const states = new NodeStateDir(mkdtempSync(join(tmpdir(), 'edgefed-pserve-')), log);
  const global = initialWeights(tensorSpecs(toySpec), new Rng(1));
  const own = initialWeights(tensorSpecs(toySpec), new Rng(2));
  const served = await ServedModel.load(7, toySpec, global, weightsSha256(global));
  const serving = new PersonalServing(states);
  try {
    const none = await serving.pick(served, 1);
    assert.deepEqual(none.info, { kind: 'global', version: 7, sha256: weightsSha256(global) });
    assert.equal(none.model, served);

    states.storeFor(1, toyLayout).save({ kind: 'ditto', round: 3, personal: own });
    const ditto = await serving.pick(served, 1);
    assert.deepEqual(ditto.info, {
      kind: 'personalised',
      version: 7,
      sha256: weightsSha256(own),
      personal: { state: 'ditto', round: 3 },
    });
    const x = Float32Array.from({ length: 8 }, (_, i) => Math.sin(i));
    assert.deepEqual(
      await ditto.model.predict(x, 2),
      await (await ServedModel.load(0, toySpec, own, '')).predict(x, 2),
    );

    const slots = headSlots(toyLayout, 1);
    states.storeFor(2, toyLayout).save({ kind: 'fedper', round: 4, head: takeHead(own, slots), headLayers: 1 });
    const fedper = await serving.pick(served, 2);
    assert.equal(fedper.info.sha256, weightsSha256(withHead(global, takeHead(own, slots), slots)));
    assert.equal(fedper.info.personal?.state, 'fedper');

    states.storeFor(3, toyLayout).save({ kind: 'scaffold', round: 4, control: own });
    assert.equal((await serving.pick(served, 3)).info.kind, 'global', 'a control variate is no personal model');
    assert.equal((await serving.pick(served, null)).info.kind, 'global');
  } finally {
    serving.close();
    served.retire();
  }
});
