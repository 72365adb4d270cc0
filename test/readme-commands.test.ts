// The READMEs' commands run as written. Every `edgefed` command in a code block of README.md and
// examples/*/README.md is extracted (backslash continuations joined); each file path it names must exist in
// the repo (or be written by an earlier command of the same file); commands that finish on their own run for
// real, simulations capped at one round on a slice of the data by flags appended after the README's own
// (commander keeps the last value). Long-lived services (coordinator, node, up, gateway, sim-worker) and
// commands needing a server are not started: every flag they use must be one their `--help` lists.
// The examples in every command's --help are held to the same rule for the files they name.
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
    if ((flag === '--dataset' || flag === '--input' || flag === '--calibration') && /^(csv|idx):/.test(value))
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

const helps = new Map<string, ReturnType<typeof runCli>>();
/** `edgefed NAME --help`, run once per command name. */
function helpOf(name: string) {
  if (!helps.has(name)) helps.set(name, runCli([name, '--help']));
  return helps.get(name)!;
}

/**
 * Runs commands in order as `where` writes them (see the header): files they name must exist, services (and
 * every command when `run` is false) are checked against their --help, the rest run. Returns how many ran.
 */
async function runAsWritten(where: string, commands: string[][], options = { run: true }): Promise<number> {
  const written = new Set<string>();
  // --out folders go to a scratch directory; later commands that read them are pointed there too.
  const scratch = mkdtempSync(join(tmpdir(), 'edgefed-readme-'));
  const relocate = (v: string) => ([...written].some((w) => v === w || v.startsWith(`${w}/`)) ? join(scratch, v) : v);
  let ran = 0;
  for (const writtenArgs of commands) {
    const args = writtenArgs.map((a, i) => (writtenArgs[i - 1] === '--out' ? join(scratch, a) : relocate(a)));
    for (const file of namedFiles(writtenArgs, written))
      assert.ok(existsSync(join(ROOT, file)), `${where}: \`edgefed ${args.join(' ')}\` names ${file}, not in the repo`);
    const out = args.indexOf('--out');
    const name = args[0];
    const service = !options.run || SERVICES.has(name) || args.includes('--queue');
    const run = service ? [name, '--help'] : name === 'simulate' || name === 'demo' ? [...args, ...SHORT_SIM] : args;
    const r = run[1] === '--help' ? await helpOf(name) : await runCli(run);
    assert.equal(r.code, 0, `${where}: \`edgefed ${run.join(' ')}\` exited ${r.code}: ${r.stderr.slice(0, 500)}`);
    if (service)
      for (const flag of args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]))
        assert.ok(
          r.stdout.includes(`${flag} `) || r.stdout.includes(`${flag}\n`),
          `${where}: \`edgefed ${args.join(' ')}\` uses ${flag}, which \`edgefed ${name} --help\` does not list`,
        );
    else ran++;
    if (out >= 0) written.add(writtenArgs[out + 1]);
  }
  return ran;
}

for (const readme of READMES) {
  test(`${readme}: every edgefed command names files that exist and runs as written`, {
    timeout: 600_000,
  }, async () => {
    const commands = readmeCommands(join(ROOT, readme));
    const ran = await runAsWritten(readme, commands);
    console.log(`${readme}: ${commands.length} edgefed commands checked (${ran} run)`);
    assert.ok(commands.length > 0 || readme !== 'README.md', `${readme} has edgefed commands`);
  });
}

/** The `edgefed ...` lines under "Examples:" in a --help text, continuations joined. */
function helpExamples(help: string): string[][] {
  const examples = help.split(/^Examples:\n/m)[1] ?? '';
  return examples
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .flatMap((line) =>
      shellWords(line.trim())
        .join(' ')
        .split(/ (?:&&|\||;) /),
    )
    .map((command) => command.split(' '))
    .filter((words) => words[0] === 'edgefed')
    .map((words) => words.slice(1));
}

// Checked, not run: several examples write the same --out folder, and running them all would double this file's time.
test("every command's --help examples name files that exist and flags the command lists", async () => {
  const top = await runCli(['--help']);
  const names = [...top.stdout.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]).filter((n) => n !== 'help');
  assert.ok(names.includes('simulate') && names.includes('predict'), top.stdout);
  const examples: string[][] = [];
  for (const name of names) examples.push(...helpExamples((await helpOf(name)).stdout));
  await runAsWritten('--help examples', examples, { run: false });
  assert.ok(examples.length >= 10, `only ${examples.length} help examples found`);
  console.log(`${examples.length} --help examples of ${names.length} commands checked`);
});

test('the systemd units in deploy/ start edgefed commands with flags those commands list', async () => {
  const units = readdirSync(join(ROOT, 'deploy')).filter((f) => f.endsWith('.service'));
  assert.ok(units.length >= 2, `units: ${units}`);
  for (const unit of units) {
    const text = readFileSync(join(ROOT, 'deploy', unit), 'utf8').replace(/\\\n\s*/g, ' ');
    const exec = /^ExecStart=.*edgefed\.mjs (\S+)(.*)$/m.exec(text);
    assert.ok(exec, `${unit}: an ExecStart running bin/edgefed.mjs`);
    await runAsWritten(`deploy/${unit}`, [[exec[1], ...exec[2].split(/\s+/).filter((w) => w.startsWith('--'))]], {
      run: false,
    });
  }
});
