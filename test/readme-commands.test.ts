// The READMEs' commands run as written. Every `edgefed` command in a code block of README.md and
// examples/*/README.md is extracted (backslash continuations joined); each file path it names must exist in
// the repo (or be written by an earlier command of the same file); commands that finish on their own run for
// real, simulations capped at one round on a slice of the data by flags appended after the README's own
// (commander keeps the last value). Long-lived services (coordinator, node, up, gateway, sim-worker) and
// commands needing a server only have their flags checked by `--help` parsing of the command name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from './helpers.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const SERVICES = new Set(['coordinator', 'node', 'up', 'gateway', 'sim-worker']);
/** Caps appended to simulations: the README's flags are all parsed and used, the run is short. */
const SHORT_SIM = ['--rounds', '1', '--limit-train', '2000', '--limit-test', '300', '--quiet'];

/** Splits a shell command line into words: single and double quotes, backslash escapes; no expansion. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length) word += line[++i];
      else word += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      word ??= '';
    } else if (ch === '\\' && i + 1 < line.length) {
      word = (word ?? '') + line[++i];
    } else if (/\s/.test(ch)) {
      if (word !== null) words.push(word);
      word = null;
    } else if (ch === '#' && word === null) {
      break;
    } else {
      word = (word ?? '') + ch;
    }
  }
  if (quote) throw new Error(`unbalanced ${quote} in: ${line}`);
  if (word !== null) words.push(word);
  return words;
}

/** The edgefed commands of a markdown file's code blocks, continuations joined, in order. */
function readmeCommands(file: string): string[][] {
  const commands: string[][] = [];
  let inBlock = false;
  let pending = '';
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    if (raw.trimStart().startsWith('```')) {
      inBlock = !inBlock;
      continue;
    }
    if (!inBlock) continue;
    const line = pending + raw;
    if (/\\\s*$/.test(raw)) {
      pending = line.replace(/\\\s*$/, ' ');
      continue;
    }
    pending = '';
    // Only the command itself: a trailing `&` (background) and what follows `&&` or `|` are shell, not edgefed.
    const words = shellWords(line.replace(/\s+&\s*(#.*)?$/, ''));
    const start = words[0] === 'npx' && words[1] === 'edgefed' ? 2 : words[0] === 'edgefed' ? 1 : -1;
    if (start < 0) continue;
    const end = words.findIndex((w, i) => i >= start && (w === '&&' || w === '|' || w === ';'));
    commands.push(words.slice(start, end < 0 ? undefined : end));
  }
  return commands;
}

/** Repo files a command names: --dataset/--input csv:/idx: specs, --config, --model (folders written by --out excepted). */
function namedFiles(args: string[], written: Set<string>): string[] {
  const files: string[] = [];
  for (let i = 0; i < args.length - 1; i++) {
    const [flag, value] = [args[i], args[i + 1]];
    if ((flag === '--dataset' || flag === '--input') && /^(csv|idx):/.test(value))
      files.push(value.slice(4).split('?')[0]);
    if (flag === '--config') files.push(value);
    if (flag === '--model' && /[/.]/.test(value) && ![...written].some((w) => value.startsWith(w))) files.push(value);
  }
  return files;
}

const READMES = [
  'README.md',
  ...readdirSync(join(ROOT, 'examples'))
    .map((d) => join('examples', d, 'README.md'))
    .filter((f) => existsSync(join(ROOT, f))),
];

test('shellWords splits quotes and escapes as a shell would', () => {
  assert.deepEqual(shellWords(`a 'b c' "d \\"e\\"" f\\ g # note`), ['a', 'b c', 'd "e"', 'f g']);
  assert.throws(() => shellWords(`a 'b`), /unbalanced/);
});

for (const readme of READMES) {
  test(`${readme}: every edgefed command names files that exist and runs as written`, {
    timeout: 600_000,
  }, async () => {
    const commands = readmeCommands(join(ROOT, readme));
    const written = new Set<string>();
    // --out folders go to a scratch directory; later commands that read them are pointed there too.
    const scratch = mkdtempSync(join(tmpdir(), 'edgefed-readme-'));
    const relocate = (v: string) => ([...written].some((w) => v === w || v.startsWith(`${w}/`)) ? join(scratch, v) : v);
    let ran = 0;
    for (const readmeArgs of commands) {
      const args = readmeArgs.map((a, i) => (readmeArgs[i - 1] === '--out' ? join(scratch, a) : relocate(a)));
      for (const file of namedFiles(readmeArgs, written))
        assert.ok(
          existsSync(join(ROOT, file)),
          `${readme}: \`edgefed ${args.join(' ')}\` names ${file}, which is not in the repo`,
        );
      const out = args.indexOf('--out');
      const name = args[0];
      let run: string[];
      if (SERVICES.has(name) || args.includes('--queue')) {
        run = [name, '--help']; // the command exists (its flags need a server to mean anything)
      } else if (name === 'simulate' || name === 'demo') {
        run = [...args, ...SHORT_SIM];
      } else {
        run = args;
      }
      const r = await runCli(run);
      assert.equal(r.code, 0, `${readme}: \`edgefed ${run.join(' ')}\` exited ${r.code}: ${r.stderr.slice(0, 500)}`);
      if (out >= 0) written.add(readmeArgs[out + 1]);
      ran++;
    }
    console.log(
      `${readme}: ${ran} edgefed commands checked (${commands.filter((c) => !SERVICES.has(c[0])).length} run)`,
    );
    assert.ok(ran > 0 || readme !== 'README.md', `${readme} has edgefed commands`);
  });
}
