/**
 * The body of POST /v1/predict (node and coordinator): `{ inputs: number[][] }` (rows of features, as the
 * model takes them) or `{ input: number[] }` (one sample). Pure validation: a bad body gets a PredictError
 * with a stable code and nothing else happens.
 */
export const MAX_PREDICT_ROWS = 1024;

export type PredictErrorCode =
  | 'bad_request'
  | 'bad_shape'
  | 'not_finite'
  | 'too_many_rows'
  | 'empty'
  /** The statistics that scale raw input do not fit the model's input (a 409: the server's state, not the body). */
  | 'scaling_mismatch';

/** The HTTP status a PredictError answers with. */
export const predictErrorStatus = (e: PredictError): number => (e.code === 'scaling_mismatch' ? 409 : 400);

export class PredictError extends Error {
  constructor(
    readonly code: PredictErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface PredictRows {
  n: number;
  x: Float32Array;
}

export function parsePredictBody(body: unknown, featureSize: number, maxRows = MAX_PREDICT_ROWS): PredictRows {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new PredictError('bad_request', 'body must be a JSON object with inputs (rows) or input (one sample)');
  const b = body as Record<string, unknown>;
  const hasMany = 'inputs' in b;
  if (hasMany === 'input' in b)
    throw new PredictError('bad_request', 'give exactly one of inputs (an array of rows) or input (one row)');
  const rows = hasMany ? b.inputs : [b.input];
  if (!Array.isArray(rows)) throw new PredictError('bad_shape', 'inputs must be an array of rows');
  if (rows.length === 0) throw new PredictError('empty', 'inputs has no rows');
  if (rows.length > maxRows)
    throw new PredictError('too_many_rows', `at most ${maxRows} rows per request, got ${rows.length}`);
  const x = new Float32Array(rows.length * featureSize);
  rows.forEach((row: unknown, i) => {
    const where = hasMany ? `inputs[${i}]` : 'input';
    if (!Array.isArray(row)) throw new PredictError('bad_shape', `${where} must be an array of ${featureSize} numbers`);
    if (row.length !== featureSize)
      throw new PredictError('bad_shape', `${where} has ${row.length} values, the model takes ${featureSize}`);
    row.forEach((v: unknown, j) => {
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw new PredictError('not_finite', `${where}[${j}] is ${JSON.stringify(v)}, not a finite number`);
      const f = Math.fround(v);
      if (!Number.isFinite(f)) throw new PredictError('not_finite', `${where}[${j}] = ${v} overflows float32`);
      x[i * featureSize + j] = f;
    });
  });
  return { n: rows.length, x };
}
