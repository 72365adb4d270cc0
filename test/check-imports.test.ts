/** scripts/check-imports.mjs on small trees built here: it passes a clean one and names each broken rule. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const checker = fileURLToPath(new URL('../scripts/check-imports.mjs', import.meta.url));

function check(files: Record<string, string>): { code: number | null; output: string } {
  const root = mkdtempSync(join(tmpdir(), 'edgefed-imports-'));
  try {
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    const r = spawnSync(process.execPath, [checker, '--root', root], { encoding: 'utf8' });
    return { code: r.status, output: r.stdout + r.stderr };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('a tree without cycles or crossings passes', () => {
  const r = check({
    'src/engine/a.ts': "import type { B } from './b.js';\nexport type A = B;\n",
    'src/engine/b.ts': 'export type B = number;\n',
    'src/browser.ts': "export type { A } from './engine/a.js';\n",
  });
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /3 modules, no import cycle/);
});

test('a cycle fails with its path, type-only imports included, dynamic imports not', () => {
  const r = check({
    'src/engine/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
    'src/engine/b.ts': "import type { C } from './c.ts';\nexport const b = 1;\nexport type B = C;\n",
    'src/engine/c.ts': "import { a } from './a.js';\nexport type C = typeof a;\n",
    'src/lazy/x.ts': "export const x = () => import('./y.js');\n",
    'src/lazy/y.ts': "import { x } from './x.js';\nexport const y = x;\n",
  });
  assert.equal(r.code, 1);
  assert.match(
    r.output,
    /import cycle: src\/engine\/a\.ts -> src\/engine\/b\.ts -> src\/engine\/c\.ts -> src\/engine\/a\.ts/,
  );
  assert.doesNotMatch(r.output, /src\/lazy/);
});

test('node-side and browser-side code importing coordinator code, Node builtins or tfjs fails', () => {
  const r = check({
    'src/coordinator/registry.ts': 'export interface Info { version: number }\n',
    'src/node/follower.ts': "import type { Info } from '../coordinator/registry.js';\nexport type F = Info;\n",
    'src/node/agent-core.ts': "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n",
    'src/browser.ts': "export * from './node/agent-core.js';\nexport type { F } from './node/follower.js';\n",
    'web/node/main.ts': "import * as tf from '@tensorflow/tfjs';\nexport const t = tf;\n",
  });
  assert.equal(r.code, 1);
  assert.match(r.output, /node-side src\/node\/follower\.ts:1 imports coordinator-side src\/coordinator\/registry\.ts/);
  assert.match(
    r.output,
    /browser-side code reaches coordinator-side code: src\/browser\.ts -> src\/node\/follower\.ts -> src\/coordinator\/registry\.ts/,
  );
  assert.match(
    r.output,
    /browser-side code imports 'node:fs' \(src\/node\/agent-core\.ts:1\), reached by src\/browser\.ts -> src\/node\/agent-core\.ts/,
  );
  assert.match(r.output, /browser-side code imports '@tensorflow\/tfjs' \(web\/node\/main\.ts:1\)/);
});
