/**
 * SYNTHETIC data for the traffic flow example: 15-minute counts from 6 loop detectors along one arterial
 * road over 10 days. Nothing here was measured; the numbers follow a simple story with seeded noise, so
 * the file is reproducible bit for bit:
 *   node --import tsx examples/traffic-flow/generate.ts [OUT.csv] [--per-site DIR]
 *
 * Story. Demand at each site is a daily profile (morning and evening peaks on weekdays, one broad midday
 * hump at weekends) scaled by the site's size, cut by 10-25% while it rains, with slowly wandering
 * (AR(1)) disturbances. Vehicles flow downstream, so each site also sees part of the upstream site's
 * traffic 15 minutes later. The task is regression: predict `flow_veh_min` (vehicles per minute over the
 * next 15 minutes) from what a roadside unit knows now: the time of day (as sine/cosine), weekend, rain,
 * its own last count, the upstream site's last count and its own count at this time yesterday.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/core/rng.js';
import { siteCsv, writeExampleFiles, type SiteCsv } from '../write-example.js';

export const SITES = 6;
export const DAYS = 10;
const SLOTS = 96; // 15-minute slots per day
const HEADER = 'site_id,hour_sin,hour_cos,weekend,rain_mm,flow_prev,flow_upstream_prev,flow_yesterday,flow_veh_min';

const bump = (h: number, centre: number, width: number) => Math.exp(-0.5 * ((h - centre) / width) ** 2);

/** Relative demand at hour h (0..24): weekday peaks at 8:00 and 17:30, weekend hump around 13:00. */
function profile(h: number, weekend: boolean): number {
  return weekend
    ? 0.15 + 0.7 * bump(h, 13, 3.5)
    : 0.12 + 0.9 * bump(h, 8, 1.3) + 0.8 * bump(h, 17.5, 1.6) + 0.35 * bump(h, 12.5, 2.5);
}

export function generateTrafficCsv(seed = 20261201): SiteCsv {
  const rng = new Rng(seed);
  const T = DAYS * SLOTS;
  // Rain: spells that start with 2% chance per slot and last 1-4 hours.
  const rain = new Float64Array(T);
  const weather = rng.fork('rain');
  for (let t = 0; t < T; t++) {
    if (weather.next() < 0.02) {
      const len = 4 + weather.int(13);
      const mm = weather.uniform(0.5, 6);
      for (let k = t; k < Math.min(T, t + len); k++) rain[k] = mm;
    }
  }
  const flows: Float64Array[] = [];
  for (let s = 0; s < SITES; s++) {
    const r = rng.fork(`site:${s}`);
    const size = r.uniform(14, 30); // vehicles per minute at full demand
    const f = new Float64Array(T);
    let ar = 0;
    for (let t = 0; t < T; t++) {
      const day = Math.floor(t / SLOTS);
      const h = ((t % SLOTS) * 24) / SLOTS;
      const weekend = day % 7 >= 5;
      ar = 0.85 * ar + r.normal() * 0.9;
      const rainCut = rain[t] > 0 ? 1 - Math.min(0.25, 0.1 + 0.025 * rain[t]) : 1;
      const upstream = s > 0 && t > 0 ? 0.35 * flows[s - 1][t - 1] : 0;
      f[t] = Math.max(0, size * profile(h, weekend) * rainCut + upstream + ar + r.normal() * 0.8);
    }
    flows.push(f);
  }
  const rowsBySite: string[][] = [];
  for (let s = 0; s < SITES; s++) {
    const rows: string[] = [];
    for (let t = SLOTS; t < T; t++) {
      // from day 2, so every row has yesterday's count
      const h = ((t % SLOTS) * 24) / SLOTS;
      const angle = (2 * Math.PI * h) / 24;
      const weekend = Math.floor(t / SLOTS) % 7 >= 5 ? 1 : 0;
      const up = s > 0 ? flows[s - 1][t - 1] : 0; // the first site has no detector upstream
      rows.push(
        [
          `s${s}`,
          Math.sin(angle).toFixed(4),
          Math.cos(angle).toFixed(4),
          weekend,
          rain[t].toFixed(1),
          flows[s][t - 1].toFixed(2),
          up.toFixed(2),
          flows[s][t - SLOTS].toFixed(2),
          flows[s][t].toFixed(2),
        ].join(','),
      );
    }
    rowsBySite.push(rows);
  }
  return siteCsv(HEADER, rowsBySite);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeExampleFiles(
    process.argv.slice(2),
    join(dirname(fileURLToPath(import.meta.url)), 'synthetic-traffic-flow.csv'),
    { ...generateTrafficCsv(), partName: (i) => `s${i}.csv` },
  );
}
