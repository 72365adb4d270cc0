/**
 * `edgefed doctor`: what this machine trains with (kernels, OpenBLAS core, threads, versions, CPU flags)
 * and what is missing for full speed, each with the command or setting that fixes it.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { cpuFeatures, AVX512_FLAGS } from '../nn/cpu-features.js';
import { nativeKernelsError, nativeKernelsInfo, type NativeKernelsInfo } from '../nn/kernels-native.js';
import { loadWasmKernelsNode, wasmKernelsNodeError } from '../nn/kernels-wasm-node.js';
import { selectKernels } from '../nn/kernels-select.js';
import { coreTier, describeCore } from '../nn/openblas-core.js';

export interface DoctorReport {
  versions: { edgefed: string; node: string; v8: string; tfjs: string | null; openblas: string | null };
  cpu: { model: string; cores: number; vector: string; flags: string[]; loadAverage: number[] };
  kernels: {
    selected: string;
    forcedBy: string | null;
    native: {
      available: boolean;
      error: string | null;
      core: string | null;
      threads: number | null;
      selection: NativeKernelsInfo['selection'] | null;
    };
    wasm: { available: boolean; error: string | null };
  };
  /** What stands between this machine and its full training speed; empty when nothing does. */
  missing: string[];
}

/** The flags that decide which kernels can run. */
const SPEED_FLAGS = ['avx', 'avx2', 'fma', ...AVX512_FLAGS, 'avx512_bf16', 'avx512_vnni'];

function packageVersion(url: URL): string | null {
  try {
    return (JSON.parse(readFileSync(url, 'utf8')) as { version?: string }).version ?? null;
  } catch {
    return null;
  }
}

export async function doctorReport(): Promise<DoctorReport> {
  const cpu = cpuFeatures();
  // Whether the addon loads, even when EDGEFED_KERNELS picks other kernels (the report says so separately).
  const info = nativeKernelsInfo();
  const wasm = await loadWasmKernelsNode();
  const forced = process.env.EDGEFED_KERNELS?.trim() || null;
  let selected: string;
  try {
    selected = (await selectKernels('auto')).name;
  } catch (e) {
    selected = `none: ${e instanceof Error ? e.message : String(e)}`;
  }
  const report: DoctorReport = {
    versions: {
      edgefed: packageVersion(new URL('../../package.json', import.meta.url)) ?? 'unknown',
      node: process.version,
      v8: process.versions.v8,
      tfjs: packageVersion(new URL('../../node_modules/@tensorflow/tfjs/package.json', import.meta.url)),
      openblas: info?.config ?? null,
    },
    cpu: {
      model: cpu.model,
      cores: availableParallelism(),
      vector: cpu.vector,
      flags: SPEED_FLAGS.filter((f) => cpu.flags.has(f)),
      loadAverage: loadavg().map((v) => Math.round(v * 100) / 100),
    },
    kernels: {
      selected,
      forcedBy: forced ? `EDGEFED_KERNELS=${forced}` : null,
      native: {
        available: info !== null,
        error: info ? null : nativeKernelsError(),
        core: info ? describeCore(info.selection) : null,
        threads: info?.threads ?? null,
        selection: info?.selection ?? null,
      },
      wasm: { available: wasm !== null, error: wasm ? null : wasmKernelsNodeError() },
    },
    missing: [],
  };
  report.missing = missingForFullSpeed(report);
  return report;
}

export function missingForFullSpeed(report: DoctorReport): string[] {
  const missing: string[] = [];
  const { native, wasm } = report.kernels;
  if (!native.available) {
    missing.push(
      `native kernels unavailable (${native.error ?? 'unknown'}): install g++ and libopenblas-dev, then ` +
        '`node scripts/build-native.mjs --force` (about 3x faster training than WASM)',
    );
  }
  if (report.kernels.forcedBy && report.kernels.selected !== 'native-openblas' && native.available) {
    missing.push(
      `${report.kernels.forcedBy} makes training use ${report.kernels.selected} although the native kernels load: unset it`,
    );
  }
  const core = native.selection;
  if (core?.core && core.cpuBest && coreTier(core.core) < coreTier(core.cpuBest)) {
    missing.push(
      core.chosenBy === 'environment'
        ? `OPENBLAS_CORETYPE=${core.environment} keeps OpenBLAS on ${core.core}, but this CPU (${report.cpu.vector}) runs ${core.cpuBest}: ` +
            `unset OPENBLAS_CORETYPE (EdgeFed then picks and checks the core) or set OPENBLAS_CORETYPE=${core.cpuBest}`
        : `OpenBLAS runs ${core.core} although this CPU (${report.cpu.vector}) supports ${core.cpuBest}` +
            (core.rejected.length > 0
              ? ` (refused: ${core.rejected.map((x) => `${x.core}: ${x.reason}`).join('; ')})`
              : '') +
            ': a newer OpenBLAS (0.3.22 or later) may fix it',
    );
  }
  if (!wasm.available) {
    missing.push(
      `WASM kernels unavailable (${wasm.error ?? 'unknown'}): \`node scripts/build-wasm.mjs\` (browser nodes need them)`,
    );
  }
  return missing;
}

export function formatDoctor(report: DoctorReport): string {
  const n = report.kernels.native;
  const lines = [
    `EdgeFed ${report.versions.edgefed}, Node ${report.versions.node} (V8 ${report.versions.v8}), tfjs ${report.versions.tfjs ?? 'not installed'}`,
    `CPU        ${report.cpu.model}, ${report.cpu.cores} cores, vector level ${report.cpu.vector}, load ${report.cpu.loadAverage.join(' ')}`,
    `CPU flags  ${report.cpu.flags.join(' ') || '(none read)'}`,
    `kernels    ${report.kernels.selected}${report.kernels.forcedBy ? ` (${report.kernels.forcedBy})` : ' (auto: native, else wasm, else js)'}`,
    `native     ${n.available ? `OpenBLAS core ${n.core}, ${n.threads} BLAS thread(s)` : `unavailable: ${n.error}`}`,
  ];
  if (n.selection) {
    const core = n.selection;
    lines.push(
      `           detected ${core.detected}, CPU best ${core.cpuBest ?? 'unknown'}, chosen by ${core.chosenBy}, ` +
        `OPENBLAS_CORETYPE ${core.environment ?? 'unset'}${core.rejected.length > 0 ? `, refused ${core.rejected.map((x) => x.core).join(', ')}` : ''}`,
    );
  }
  if (report.versions.openblas) lines.push(`           ${report.versions.openblas}`);
  lines.push(
    `wasm       ${report.kernels.wasm.available ? 'SIMD kernels built' : `unavailable: ${report.kernels.wasm.error}`}`,
  );
  lines.push(report.missing.length === 0 ? 'full speed: nothing missing' : 'missing for full speed:');
  for (const m of report.missing) lines.push(`  - ${m}`);
  return lines.join('\n');
}

export function addDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description(
      'print the kernels, OpenBLAS core, threads, versions and CPU flags this machine trains with, ' +
        'and what is missing for full speed',
    )
    .option('--json', 'print the report as JSON')
    .addHelpText('after', '\nExamples:\n  edgefed doctor\n  edgefed doctor --json | jq .missing\n')
    .action(async (flags: { json?: boolean }) => {
      const report = await doctorReport();
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatDoctor(report)}\n`);
    });
}
