/**
 * SYNTHETIC loop-detector counts for the traffic forecasting example: 8 detectors on a city's arterials,
 * vehicles per hour in 15-minute slots over 4 weeks. Nothing here was measured; the numbers follow the
 * story below with seeded noise, so the file regenerates bit for bit:
 *   node --import tsx examples/traffic-flow/generate-loops.ts [OUT.csv] [--per-site DIR]
 *
 * Story. Each detector has its own scale (a peak of 400 to 1,800 veh/h) and its own mix of commuter peaks
 * (some carry more of the morning, some of the evening flow). Demand follows a daily cycle (weekday
 * peaks near 8:00 and 17:30, a midday plateau, a quiet night) and a weekly one (Friday evenings heavier,
 * Monday mornings lighter, weekends a broad midday hump at lower volume). Slow (AR(1)) disturbances
 * stand for weather and events; counts carry Poisson-like noise. Incidents (about one per detector per
 * five days, 30 minutes to 2 hours) cut the flow by 40-80% and recover over the following half hour.
 * Columns: sensor, slot (15-minute index from the start), hour_sin / hour_cos (time of day), weekend,
 * flow (veh/h in the slot). The forecasting task is the next slot's flow from the last 6 hours.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/core/rng.js';
import { siteCsv, writeExampleFiles, type SiteCsv } from '../write-example.js';

export const SENSORS = 8;
export const DAYS = 28;
const SLOTS = 96; // 15-minute slots per day
const HEADER = 'sensor,slot,hour_sin,hour_cos,weekend,flow';

const bump = (h: number, centre: number, width: number) => Math.exp(-0.5 * ((h - centre) / width) ** 2);

/** Relative demand at hour h of day-of-week dow (0 = Monday) for a detector with this morning / evening mix. */
function demand(h: number, dow: number, morning: number, evening: number): number {
  if (dow >= 5) return 0.08 + 0.55 * bump(h, 13.5, 3.2) + 0.1 * bump(h, 19, 2);
  const monday = dow === 0 ? 0.85 : 1;
  const friday = dow === 4 ? 1.2 : 1;
  return (
    0.06 +
    morning * monday * bump(h, 8, 1.1) +
    evening * friday * bump(h, 17.5, 1.5) +
    0.45 * bump(h, 12.5, 3) +
    0.05 * bump(h, 21, 1.5)
  );
}

export function generateLoopCsv(seed = 20261207): SiteCsv {
  const rng = new Rng(seed);
  const T = DAYS * SLOTS;
  const rowsBySite: string[][] = [];
  for (let s = 0; s < SENSORS; s++) {
    const r = rng.fork(`sensor:${s}`);
    const peak = r.uniform(400, 1800);
    const morning = r.uniform(0.5, 1);
    const evening = r.uniform(0.5, 1);
    // Incidents: start with probability 1 / (5 days) per slot; capacity factor and duration per incident.
    const capacity = new Float64Array(T).fill(1);
    for (let t = 0; t < T; t++) {
      if (r.next() >= 1 / (5 * SLOTS)) continue;
      const len = 2 + r.int(7);
      const cut = r.uniform(0.2, 0.6);
      for (let k = 0; k < len && t + k < T; k++) capacity[t + k] = Math.min(capacity[t + k], cut);
      for (let k = 0; k < 2 && t + len + k < T; k++)
        capacity[t + len + k] = Math.min(capacity[t + len + k], cut + ((1 - cut) * (k + 1)) / 3);
    }
    let ar = 0;
    const rows: string[] = [];
    for (let t = 0; t < T; t++) {
      const day = Math.floor(t / SLOTS);
      const dow = day % 7;
      const h = ((t % SLOTS) * 24) / SLOTS;
      ar = 0.9 * ar + 0.04 * r.normal();
      const mean = Math.max(0, peak * demand(h, dow, morning, evening) * (1 + ar) * capacity[t]);
      const flow = Math.max(0, Math.round(mean + Math.sqrt(mean * 4) * r.normal()));
      const angle = (2 * Math.PI * h) / 24;
      rows.push([`d${s}`, t, Math.sin(angle).toFixed(4), Math.cos(angle).toFixed(4), dow >= 5 ? 1 : 0, flow].join(','));
    }
    rowsBySite.push(rows);
  }
  return siteCsv(HEADER, rowsBySite);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeExampleFiles(
    process.argv.slice(2),
    join(dirname(fileURLToPath(import.meta.url)), 'synthetic-loop-detectors.csv'),
    { ...generateLoopCsv(), partName: (i) => `d${i}.csv` },
  );
}
