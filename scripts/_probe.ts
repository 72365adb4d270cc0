import { DenseTeam } from '../src/nn/dense-team.js';
import { loadNativeKernels } from '../src/nn/kernels-native.js';
import { loadMnist } from '../src/data/mnist.js';
loadNativeKernels();
const spec = { inputSize: 784, layers: [{ units: 128, activation: 'relu' }, { units: 10, activation: 'softmax' }], loss: 'sparse_categorical_crossentropy' } as any;
const ds: any = loadMnist();
const opt = (process.argv[2] ?? 'adam');
const steps = 188;
function run(k: number) {
  const team = new DenseTeam(spec, k);
  const w = new Float32Array(team.numParams);
  let s = 1; for (let i = 0; i < w.length; i++) { s = (s * 1103515245 + 12345) >>> 0; w[i] = (s / 2 ** 32 - 0.5) * 0.1; }
  const st = opt === 'adam' ? [new Float32Array(w.length), new Float32Array(w.length)] : [];
  const x = ds?.train?.x ?? new Float32Array(6016 * 784).map((_, i) => (i % 7 === 0 ? 0.5 : 0));
  const y = new Int32Array(6016).map((_, i) => ds?.train?.y?.[i] ?? i % 10);
  const times: number[] = [];
  let n = 1;
  for (let rep = 0; rep < 15; rep++) {
    if (rep === 5) team.profile(true);
    const t0 = process.hrtime.bigint();
    for (let b = 0; b < steps; b++) team.step(w, x.subarray(b * 32 * 784, (b + 1) * 32 * 784), y.subarray(b * 32, b * 32 + 32), 32, { name: opt, lr: 0.001 } as any, n++, st);
    times.push(Number(process.hrtime.bigint() - t0) / 1e3 / steps);
  }
  const prof = team.profile(false);
  team.close();
  times.sort((a, b) => a - b);
  const per = prof.map((p) => `${((p.stepSeconds * 1e6) / (10 * steps)).toFixed(1)}/${((p.waitSeconds * 1e6) / (10 * steps)).toFixed(1)}`);
  console.log(`k=${k} ${opt} step µs median ${times[7].toFixed(1)} min ${times[0].toFixed(1)}  cpu per thread run/wait µs ${per.join(' ')}`);
}
for (let r = 0; r < 2; r++) { run(1); run(2); }
