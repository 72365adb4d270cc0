#!/usr/bin/env node
// Checks the module graph of src/ and web/ with the TypeScript compiler's parser (no bundler, no new
// dependency) and fails (exit 1) naming each offending path:
// - no import cycle among static imports (type-only ones count: they tie the modules' designs together);
//   dynamic import() is lazy by design and left out of the cycle check;
// - node-side and browser-side code (src/node/, and everything the browser agent and pages reach) never
//   imports coordinator-side code (src/coordinator/);
// - nothing a browser page or `edgefed/browser` reaches imports a Node builtin, tfjs or a Node-only file.
// `node scripts/check-imports.mjs [--root DIR]` (part of `npm run lint`; --root checks another tree, for its test).
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const rootFlag = process.argv.indexOf('--root');
const root =
  rootFlag > 0 ? resolve(process.argv[rootFlag + 1]) : resolve(dirname(fileURLToPath(import.meta.url)), '..');
const rel = (file) => relative(root, file).split('\\').join('/');

/** Where the browser runs code: the pages and the library's browser entry. */
const BROWSER_ENTRIES = ['web/node/main.ts', 'web/engine-check/main.ts', 'web/dashboard/main.ts', 'src/browser.ts'];
/** Browser entries whose code is an edge node (the dashboard is the coordinator's own page). */
const NODE_SIDE_ENTRIES = ['web/node/main.ts', 'web/engine-check/main.ts', 'src/browser.ts'];
/** Files that load a .node addon, the file system or tfjs: reachable from Node.js code only. */
const NODE_ONLY_FILES = [
  'src/node/agent.ts',
  'src/node/platform-node.ts',
  'src/node/data.ts',
  'src/net/node-crypto.ts',
  'src/model/make-trainer.ts',
  'src/model/tfjs.ts',
  'src/model/tfjs-trainer.ts',
  'src/model/hash.ts',
  'src/nn/kernels-select.ts',
  'src/nn/kernels-native.ts',
  'src/nn/kernels-wasm-node.ts',
];
const nodeBuiltins = new Set(builtinModules.filter((m) => !m.startsWith('_')));

function sourceFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) return [];
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Every import of a file: its specifier, whether it is static, and the file it resolves to (if relative). */
function importsOf(file) {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found = [];
  const add = (specifier, dynamic) => {
    const line = source.getLineAndCharacterOfPosition(specifier.getStart()).line + 1;
    const text = specifier.text;
    let target = null;
    if (text.startsWith('.')) {
      const base = resolve(dirname(file), text);
      target =
        [base, base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), `${base}.ts`].find(
          (candidate) => existsSync(candidate) && statSync(candidate).isFile(),
        ) ?? null;
    }
    found.push({ text, dynamic, line, target });
  };
  const visit = (node) => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    )
      add(node.moduleSpecifier, false);
    else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments.length === 1 &&
      ts.isStringLiteralLike(node.arguments[0])
    )
      add(node.arguments[0], true);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const files = ['src', 'web']
  .filter((dir) => existsSync(join(root, dir)))
  .flatMap((dir) => sourceFiles(join(root, dir)))
  .filter((f) => !f.endsWith('.test.ts'));
const graph = new Map(files.map((file) => [file, importsOf(file)]));
const problems = [];

// Cycles: Tarjan's strongly connected components over static edges; each component with more than one
// module (or a module importing itself) is reported with one concrete cycle through it.
function findCycles() {
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  let counter = 0;
  const components = [];
  const edges = (file) => (graph.get(file) ?? []).filter((i) => !i.dynamic && i.target && graph.has(i.target));
  const strongConnect = (file) => {
    index.set(file, counter);
    low.set(file, counter++);
    stack.push(file);
    onStack.add(file);
    for (const { target } of edges(file)) {
      if (!index.has(target)) {
        strongConnect(target);
        low.set(file, Math.min(low.get(file), low.get(target)));
      } else if (onStack.has(target)) {
        low.set(file, Math.min(low.get(file), index.get(target)));
      }
    }
    if (low.get(file) === index.get(file)) {
      const component = [];
      let member;
      do {
        member = stack.pop();
        onStack.delete(member);
        component.push(member);
      } while (member !== file);
      const selfLoop = edges(file).some((i) => i.target === file);
      if (component.length > 1 || selfLoop) components.push(new Set(component));
    }
  };
  for (const file of graph.keys()) if (!index.has(file)) strongConnect(file);
  for (const component of components) {
    // Breadth-first from the component's first module (sorted) back to itself, inside the component.
    const start = [...component].sort()[0];
    const previous = new Map();
    const queue = [start];
    let closing = null;
    while (queue.length > 0 && !closing) {
      const file = queue.shift();
      for (const { target } of edges(file)) {
        if (!component.has(target)) continue;
        if (target === start) {
          closing = file;
          break;
        }
        if (!previous.has(target)) {
          previous.set(target, file);
          queue.push(target);
        }
      }
    }
    const path = [start];
    for (let file = closing; file !== start; file = previous.get(file)) path.splice(1, 0, file);
    const others = [...component]
      .filter((file) => !path.includes(file))
      .map(rel)
      .sort();
    const rest = others.length > 0 ? ` (also tangled in it: ${others.join(', ')})` : '';
    problems.push(`import cycle: ${[...path, start].map(rel).join(' -> ')}${rest}`);
  }
}

/** Every module an entry reaches (static and dynamic imports), with the chain that first reached it. */
function reach(entry) {
  const via = new Map([[entry, null]]);
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift();
    for (const { target } of graph.get(file) ?? []) {
      if (target && graph.has(target) && !via.has(target)) {
        via.set(target, file);
        queue.push(target);
      }
    }
  }
  const chain = (file) => {
    const names = [];
    for (let at = file; at; at = via.get(at)) names.unshift(rel(at));
    return names.join(' -> ');
  };
  return { files: [...via.keys()], chain };
}

findCycles();

for (const [file, imports] of graph) {
  if (!rel(file).startsWith('src/node/')) continue;
  for (const i of imports) {
    if (i.target && rel(i.target).startsWith('src/coordinator/')) {
      problems.push(`node-side ${rel(file)}:${i.line} imports coordinator-side ${rel(i.target)}`);
    }
  }
}
for (const entry of NODE_SIDE_ENTRIES) {
  if (!graph.has(join(root, entry))) continue;
  const { files: reached, chain } = reach(join(root, entry));
  for (const file of reached) {
    if (rel(file).startsWith('src/coordinator/'))
      problems.push(`browser-side code reaches coordinator-side code: ${chain(file)}`);
  }
}
for (const entry of BROWSER_ENTRIES) {
  if (!graph.has(join(root, entry))) continue;
  const { files: reached, chain } = reach(join(root, entry));
  for (const file of reached) {
    if (NODE_ONLY_FILES.includes(rel(file)))
      problems.push(`browser-side code reaches a Node-only file: ${chain(file)}`);
    for (const i of graph.get(file)) {
      const bare = i.text.replace(/^node:/, '').split('/')[0];
      if (i.text.startsWith('node:') || nodeBuiltins.has(bare) || i.text.startsWith('@tensorflow/')) {
        problems.push(`browser-side code imports '${i.text}' (${rel(file)}:${i.line}), reached by ${chain(file)}`);
      }
    }
  }
}

if (problems.length > 0) {
  console.error(`check-imports: ${problems.length} problem(s) in ${graph.size} modules:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-imports: ${graph.size} modules, no import cycle, browser and node sides clear of coordinator code`);
