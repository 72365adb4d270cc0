import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parsePredictBody, PredictError } from './request.js';

const code = (body: unknown, f = 3, max?: number) => {
  try {
    parsePredictBody(body, f, max);
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof PredictError, String(e));
    return e.code;
  }
};

test('rows and single samples become float32 rows', () => {
  const many = parsePredictBody(
    {
      inputs: [
        [1, 2, 3],
        [4.5, -6, 0],
      ],
    },
    3,
  );
  assert.equal(many.n, 2);
  assert.deepEqual(Array.from(many.x), [1, 2, 3, 4.5, -6, 0]);
  const one = parsePredictBody({ input: [0.1, 0.2, 0.3] }, 3);
  assert.equal(one.n, 1);
  assert.deepEqual(one.x, Float32Array.from([0.1, 0.2, 0.3]));
});

test('bad bodies get their code', () => {
  assert.equal(code(null), 'bad_request');
  assert.equal(code([[1, 2, 3]]), 'bad_request');
  assert.equal(code({}), 'bad_request');
  assert.equal(code({ inputs: [[1, 2, 3]], input: [1, 2, 3] }), 'bad_request');
  assert.equal(code({ inputs: 'x' }), 'bad_shape');
  assert.equal(code({ inputs: [] }), 'empty');
  assert.equal(code({ inputs: [[1, 2]] }), 'bad_shape');
  assert.equal(code({ inputs: [1, 2, 3] }), 'bad_shape');
  assert.equal(code({ input: [1, 2, '3'] }), 'not_finite');
  assert.equal(code({ input: [1, 2, null] }), 'not_finite');
  assert.equal(code({ input: [1, 2, 1e300] }), 'not_finite');
  assert.equal(
    code(
      {
        inputs: [
          [1, 2, 3],
          [1, 2, 3],
        ],
      },
      3,
      1,
    ),
    'too_many_rows',
  );
});

test('property: any rows of the right width and finite float32 values parse back exactly', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }).chain((f) =>
        fc.tuple(
          fc.constant(f),
          fc.array(fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: f, maxLength: f }), {
            minLength: 1,
            maxLength: 8,
          }),
        ),
      ),
      ([f, rows]) => {
        const r = parsePredictBody({ inputs: rows }, f);
        assert.equal(r.n, rows.length);
        assert.deepEqual(
          Array.from(r.x),
          rows.flat().map((v) => (Object.is(v, -0) ? -0 : v)),
        );
      },
    ),
  );
});
