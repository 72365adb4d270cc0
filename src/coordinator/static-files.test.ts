import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve, sep } from 'node:path';
import fc from 'fast-check';
import { resolveStaticPath } from './static-files.ts';

const ROOT = resolve('/srv/edgefed/dist');

test('resolveStaticPath maps page paths into the directory', () => {
  assert.equal(resolveStaticPath(ROOT, ''), `${ROOT}${sep}index.html`);
  assert.equal(resolveStaticPath(ROOT, 'assets/index-abc.js'), `${ROOT}${sep}assets${sep}index-abc.js`);
  assert.equal(resolveStaticPath(ROOT, 'assets/'), `${ROOT}${sep}assets${sep}index.html`);
  assert.equal(resolveStaticPath(ROOT, 'a%20b.css'), `${ROOT}${sep}a b.css`);
});

test('resolveStaticPath refuses traversal, NUL, backslashes, bad escapes and unknown types', () => {
  for (const bad of [
    '..',
    '../x.js',
    'assets/../../x.js',
    '%2e%2e/x.js',
    '..%2fx.js',
    '.%2e/x.js',
    './index.html',
    'a\\..\\x.js',
    '..%5cx.js',
    'index.html%00.js',
    '%E0%A4%A',
    'vite.config.ts',
    'secret',
    '.env',
  ]) {
    assert.equal(resolveStaticPath(ROOT, bad), null, bad);
  }
});

test('property: whatever the request, the answer is null or a file strictly inside the directory', () => {
  const segment = fc.oneof(
    fc.constantFrom('..', '.', '', '%2e%2e', '%2E.', '%2f', '%5c', '%00', 'assets', 'index.html', 'a.js'),
    fc.string({ maxLength: 6 }),
  );
  fc.assert(
    fc.property(fc.array(segment, { maxLength: 8 }), (parts) => {
      const file = resolveStaticPath(ROOT, parts.join('/'));
      return file === null || file.startsWith(ROOT + sep);
    }),
    { numRuns: 2000 },
  );
});
