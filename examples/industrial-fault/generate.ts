/**
 * SYNTHETIC data for the industrial fault example: sensor readings from 8 centrifugal pumps, one row per
 * minute, labelled with the pump's condition. Nothing here was measured; the numbers follow a simple
 * physical story (below) with seeded noise, so the file is reproducible bit for bit:
 *   node --import tsx examples/industrial-fault/generate.ts [OUT.csv] [--per-site DIR]
 *
 * Story. Each pump has its own duty point (load), ambient temperature and sensor offsets, so machines
 * differ (non-IID across sites). Conditions (fault column):
 *   0 normal        bearing temperature ~ 48-60 C with load; vibration RMS ~ 2 mm/s; crest factor ~ 3
 *   1 bearing wear  impacts from a damaged race: vibration RMS +1.5..4 mm/s, crest factor +1.5..3, +3..8 C
 *   2 overheating   cooling loss or overload: temperature +12..25 C, motor current +5..10 A
 *   3 cavitation    suction pressure too low: discharge pressure -1..2 bar, current -2..4 A, vibration +0.5..1.5
 * Faults are rarer than normal running (about 70/10/10/10) and each machine sees every condition.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../src/core/rng.js';
import { siteCsv, writeExampleFiles, type SiteCsv } from '../write-example.js';

export const MACHINES = 8;
export const ROWS_PER_MACHINE = 500;
export const FAULT_NAMES = ['normal', 'bearing_wear', 'overheating', 'cavitation'] as const;
const HEADER =
  'machine_id,bearing_temp_c,vibration_rms_mm_s,crest_factor,discharge_pressure_bar,motor_current_a,speed_rpm,fault';

/** The CSV text for the given seed (default: the one the committed file uses). */
export function generateFaultCsv(seed = 20261201): SiteCsv {
  const rng = new Rng(seed);
  const rowsBySite: string[][] = [];
  for (let m = 0; m < MACHINES; m++) {
    const r = rng.fork(`machine:${m}`);
    const load = r.uniform(0.6, 1.0); // fraction of rated flow
    const ambient = r.uniform(18, 32);
    const offsets = { temp: r.normal() * 1.5, vib: r.normal() * 0.2, pressure: r.normal() * 0.2 };
    const rows: string[] = [];
    for (let i = 0; i < ROWS_PER_MACHINE; i++) {
      const u = r.next();
      const fault = u < 0.7 ? 0 : u < 0.8 ? 1 : u < 0.9 ? 2 : 3;
      const loadNow = load + r.normal() * 0.05;
      let temp = ambient + 22 * loadNow + offsets.temp + r.normal() * 2;
      let vib = 1.6 + 0.6 * loadNow + offsets.vib + Math.abs(r.normal()) * 0.4;
      let crest = 3 + r.normal() * 0.35;
      let pressure = 4 + 3 * loadNow + offsets.pressure + r.normal() * 0.25;
      let current = 28 + 16 * loadNow + r.normal() * 1.5;
      const rpm = 1480 - 15 * loadNow + r.normal() * 4;
      if (fault === 1) {
        vib += r.uniform(1.5, 4);
        crest += r.uniform(1.5, 3);
        temp += r.uniform(3, 8);
      } else if (fault === 2) {
        temp += r.uniform(12, 25);
        current += r.uniform(5, 10);
      } else if (fault === 3) {
        pressure -= r.uniform(1, 2);
        current -= r.uniform(2, 4);
        vib += r.uniform(0.5, 1.5);
      }
      const f = (v: number, d: number) => v.toFixed(d);
      rows.push(
        [`m${m}`, f(temp, 2), f(vib, 3), f(crest, 3), f(pressure, 3), f(current, 2), f(rpm, 1), fault].join(','),
      );
    }
    rowsBySite.push(rows);
  }
  return siteCsv(HEADER, rowsBySite);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeExampleFiles(
    process.argv.slice(2),
    join(dirname(fileURLToPath(import.meta.url)), 'synthetic-pump-sensors.csv'),
    { ...generateFaultCsv(), partName: (i) => `m${i}.csv` },
  );
}
