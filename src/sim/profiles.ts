/**
 * Device profiles for heterogeneous simulation: per node compute speed, link bandwidth and
 * availability over time. Pure and seeded: the same spec, node count and Rng give the same profiles.
 *
 * Built-in sets (synthetic, in the spirit of FedScale's device traces, not those traces):
 * - `uniform`: every node 2000 samples/s, 2.5 MB/s down, 1.25 MB/s up, always online.
 * - `slow20`: as uniform, but floor(0.2 N) nodes (drawn by seed) are a factor 5-10 (uniform) slower in
 *   compute and in both directions of their link: a slow device overall. Always online.
 * - `heavytail`: log-normal speed (median 2000 samples/s, sigma 0.8) and bandwidth (median 2.5 MB/s down,
 *   1 MB/s up, sigma 1), and periodic availability: online for a fraction in [0.5, 1] of a period of
 *   60-600 s, with a random phase.
 * Any set takes mid-round link drops as a suffix, `SET:drop=P[,offline=S]` (or `dropout` in a JSON profile): a
 * request is cut by a dropped link with probability P, the node finishes its local work and its reply arrives
 * after the link is back, an exponential S seconds (mean, default 60) later: FedScale's availability traces show
 * devices leaving mid-round; this is their simplest model, drawn by seed.
 * A JSON file gives profiles explicitly (`[{...}, ...]` or `{ "profiles": [...] }`); node i takes entry
 * i mod length, so one entry describes every node.
 */
import { z } from 'zod';
import { Rng } from '../core/rng.js';

/** Online while ((t + phaseSeconds) mod periodSeconds) < onFraction * periodSeconds. */
export interface Availability {
  periodSeconds: number;
  onFraction: number;
  phaseSeconds: number;
}

/** Links that drop mid-round: per request, with this probability, for an exponential time of this mean. */
export interface Dropout {
  probability: number;
  meanOfflineSeconds: number;
}

export interface DeviceProfile {
  samplesPerSecond: number;
  downloadBytesPerSecond: number;
  uploadBytesPerSecond: number;
  /** Absent: always online. */
  availability?: Availability;
  /** Absent: the link never drops mid-round. */
  dropout?: Dropout;
}

export const DEFAULT_OFFLINE_SECONDS = 60;

export const PROFILE_SETS = ['uniform', 'slow20', 'heavytail'] as const;
export type ProfileSet = (typeof PROFILE_SETS)[number];

const BASE: DeviceProfile = { samplesPerSecond: 2000, downloadBytesPerSecond: 2.5e6, uploadBytesPerSecond: 1.25e6 };
/** Share of nodes made slow in `slow20`, and the range of their slow-down factor. */
export const SLOW_SHARE = 0.2;
export const SLOW_FACTOR: readonly [number, number] = [5, 10];

const positive = z.number().finite().gt(0);
const AvailabilitySchema = z
  .object({
    periodSeconds: positive,
    onFraction: z.number().gt(0).lte(1),
    phaseSeconds: z.number().finite().min(0).default(0),
  })
  .strict();
const DropoutSchema = z
  .object({
    probability: z.number().min(0).lte(1),
    meanOfflineSeconds: positive.default(DEFAULT_OFFLINE_SECONDS),
  })
  .strict();
const ProfileSchema = z
  .object({
    samplesPerSecond: positive,
    downloadBytesPerSecond: positive,
    uploadBytesPerSecond: positive,
    availability: AvailabilitySchema.optional(),
    dropout: DropoutSchema.optional(),
  })
  .strict();
const ProfileFileSchema = z.union([
  z.array(ProfileSchema).min(1),
  z.object({ profiles: z.array(ProfileSchema).min(1) }).strict(),
]);

export type ProfileSpec = ({ kind: 'builtin'; name: ProfileSet } | { kind: 'file'; path: string }) & {
  dropout?: Dropout;
};

/** `drop=P[,offline=S]`, the suffix that adds mid-round drops to every profile of a set or file. */
function parseDropout(spec: string, text: string): Dropout {
  const out: Dropout = { probability: NaN, meanOfflineSeconds: DEFAULT_OFFLINE_SECONDS };
  for (const part of text.split(',')) {
    const [key, value] = part.split('=');
    const v = Number(value);
    if (key === 'drop' && value !== undefined && v >= 0 && v <= 1) out.probability = v;
    else if (key === 'offline' && value !== undefined && v > 0 && Number.isFinite(v)) out.meanOfflineSeconds = v;
    else
      throw new Error(
        `device profile '${spec}': expected drop=P (0..1) and optionally offline=SECONDS (> 0), got '${part}'`,
      );
  }
  if (Number.isNaN(out.probability)) throw new Error(`device profile '${spec}': give drop=P with the suffix`);
  return out;
}

/** `--profile` values: a built-in set name or a path to a JSON file (ending in .json), each with an optional drop suffix. */
export function parseProfileSpec(spec: string): ProfileSpec {
  const s = spec.trim();
  const colon = s.search(/:drop=/);
  const base = colon < 0 ? s : s.slice(0, colon);
  const dropout = colon < 0 ? undefined : parseDropout(spec, s.slice(colon + 1));
  if ((PROFILE_SETS as readonly string[]).includes(base))
    return { kind: 'builtin', name: base as ProfileSet, ...(dropout ? { dropout } : {}) };
  if (base.toLowerCase().endsWith('.json')) return { kind: 'file', path: base, ...(dropout ? { dropout } : {}) };
  throw new Error(
    `unknown device profile '${spec}' (one of ${PROFILE_SETS.join(', ')}, or a path to a .json file; :drop=P[,offline=S] adds mid-round drops)`,
  );
}

/** The profiles of a built-in set for `nodes` nodes, drawn from rng. */
export function builtinProfiles(name: ProfileSet, nodes: number, rng: Rng): DeviceProfile[] {
  if (!Number.isInteger(nodes) || nodes < 1)
    throw new Error(`device profiles: nodes must be a whole number >= 1, got ${nodes}`);
  if (name === 'uniform') return Array.from({ length: nodes }, () => ({ ...BASE }));
  if (name === 'slow20') {
    const out = Array.from({ length: nodes }, (): DeviceProfile => ({ ...BASE }));
    for (const i of rng.sample(nodes, Math.floor(SLOW_SHARE * nodes + 1e-9))) {
      const f = rng.uniform(SLOW_FACTOR[0], SLOW_FACTOR[1]);
      out[i] = {
        samplesPerSecond: BASE.samplesPerSecond / f,
        downloadBytesPerSecond: BASE.downloadBytesPerSecond / f,
        uploadBytesPerSecond: BASE.uploadBytesPerSecond / f,
      };
    }
    return out;
  }
  return Array.from({ length: nodes }, () => {
    const period = rng.uniform(60, 600);
    return {
      samplesPerSecond: 2000 * Math.exp(0.8 * rng.normal()),
      downloadBytesPerSecond: 2.5e6 * Math.exp(rng.normal()),
      uploadBytesPerSecond: 1e6 * Math.exp(rng.normal()),
      availability: { periodSeconds: period, onFraction: rng.uniform(0.5, 1), phaseSeconds: rng.uniform(0, period) },
    };
  });
}

/** Profiles from a JSON document; node i takes entry i mod length. Throws with the offending field. */
export function profilesFromJson(text: string, nodes: number, source = 'profile file'): DeviceProfile[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source}: not valid JSON (${(e as Error).message})`);
  }
  const parsed = ProfileFileSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `${source}: ${issue.path.join('.') || 'document'}: ${issue.message} (expected [{samplesPerSecond, downloadBytesPerSecond, uploadBytesPerSecond, availability?}, ...])`,
    );
  }
  const list = Array.isArray(parsed.data) ? parsed.data : parsed.data.profiles;
  return Array.from({ length: nodes }, (_, i) => list[i % list.length]);
}

/** Whether a device is online at virtual time t (seconds). */
export function isOnline(profile: DeviceProfile, t: number): boolean {
  const availability = profile.availability;
  if (!availability || availability.onFraction >= 1) return true;
  const phase =
    (((t + availability.phaseSeconds) % availability.periodSeconds) + availability.periodSeconds) %
    availability.periodSeconds;
  return phase < availability.onFraction * availability.periodSeconds;
}

/** The earliest time >= t at which the device is online. */
export function nextOnline(profile: DeviceProfile, t: number): number {
  if (isOnline(profile, t)) return t;
  const availability = profile.availability!;
  const phase =
    (((t + availability.phaseSeconds) % availability.periodSeconds) + availability.periodSeconds) %
    availability.periodSeconds;
  // A nanosecond past the boundary, so rounding cannot land the answer just before it (still offline).
  return t + (availability.periodSeconds - phase) + 1e-9;
}

/**
 * Extra simulated seconds before a request's reply arrives because the node's link dropped mid-round (0 when it
 * did not): u decides whether it drops (u < probability), v how long it stays away (exponential, inverse CDF).
 */
export function dropDelay(profile: DeviceProfile, u: number, v: number): number {
  const dropout = profile.dropout;
  if (!dropout || !(u < dropout.probability)) return 0;
  return -dropout.meanOfflineSeconds * Math.log(1 - v);
}
