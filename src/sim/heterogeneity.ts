/** Builds a simulation's virtual clock from its options: device profiles by name or file, drawn by seed. */
import { readFileSync } from 'node:fs';
import { Rng } from '../core/rng.js';
import { VirtualClock } from './clock.js';
import { builtinProfiles, parseProfileSpec, profilesFromJson, type DeviceProfile } from './profiles.js';
import type { ResolvedOptions } from './options.js';

/** The profile spec in effect: --profile, else `uniform` when async, a deadline or over-selection needs a clock. */
export function profileSpecOf(options: ResolvedOptions): string | undefined {
  return (
    options.profile ??
    (options.mode === 'async' || options.deadline !== undefined || options.overSelect !== undefined
      ? 'uniform'
      : undefined)
  );
}

export function loadProfiles(spec: string, nodes: number, seed: number): DeviceProfile[] {
  const profileSpec = parseProfileSpec(spec);
  const withDrops = (profiles: DeviceProfile[]) =>
    profileSpec.dropout ? profiles.map((p) => ({ ...p, dropout: profileSpec.dropout })) : profiles;
  if (profileSpec.kind === 'builtin')
    return withDrops(builtinProfiles(profileSpec.name, nodes, new Rng(seed).fork('profiles')));
  let text: string;
  try {
    text = readFileSync(profileSpec.path, 'utf8');
  } catch (e) {
    throw new Error(
      `--profile: cannot read ${profileSpec.path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  return withDrops(profilesFromJson(text, nodes, `--profile ${profileSpec.path}`));
}

/** The run's clock, or undefined for a run in real time only. */
export function makeClock(options: ResolvedOptions): VirtualClock | undefined {
  const spec = profileSpecOf(options);
  return spec === undefined
    ? undefined
    : new VirtualClock(loadProfiles(spec, options.nodes, options.seed), options.seed);
}
