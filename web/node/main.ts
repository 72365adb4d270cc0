/**
 * The browser edge node page (served by the coordinator at /node/): enrols this tab with the coordinator
 * and trains in it on data it loads (an MNIST shard from the coordinator, or a CSV file the user picks),
 * with the same agent code as the Node.js node (src/node/agent-core.ts) and the engine on WASM kernels.
 * Shows its status, the rounds it contributed to, the last loss and accuracy, and the bytes exchanged;
 * publishes the same as `window.__edgefedNode` (for tests).
 *
 * Query parameters prefill the form: coordinator (default: this page's origin), token, name, source
 * (mnist | csv), shard (I/N[:PARTITION], default 0/10), label (CSV label column); autostart=1 starts
 * right away (MNIST only: a file must be picked by hand). kernels=js forces the TypeScript kernels.
 * The MNIST shard needs a read token: the one in the URL fragment (#token=...) or the one this tab's
 * dashboard kept (shared/read-token.ts).
 */
import { AgentCore, type AgentEvent, type AgentLog } from '../../src/node/agent-core.js';
import { csvLocalData, holdOutValidation, parseShardSpec } from '../../src/node/local-data.js';
import type { LocalData } from '../../src/node/host.js';
import { decodeSlice } from '../../src/data/slice.js';
import { chooseKernels, el, fetchBytes } from '../shared/page.js';
import { authHeaders } from '../shared/read-token.js';
import { browserPlatform } from '../../src/node/platform-browser.js';
import { loadIdentity, saveIdentity } from './identity-store.js';

export interface NodePageState {
  state: 'idle' | 'starting' | 'connected' | 'disconnected' | 'error';
  name: string;
  nodeId: number | null;
  kernels: string;
  examples: number;
  /** Rounds this tab sent an update for. */
  roundsContributed: number[];
  lastTrain: { round: number; loss: number; accuracy: number } | null;
  lastEval: { round: number; loss: number; accuracy: number } | null;
  bytesIn: number;
  bytesOut: number;
  error: string | null;
}

declare global {
  interface Window {
    __edgefedNode?: NodePageState;
  }
}

const NAME_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
const params = new URLSearchParams(location.search);
const state: NodePageState = {
  state: 'idle',
  name: '',
  nodeId: null,
  kernels: '',
  examples: 0,
  roundsContributed: [],
  lastTrain: null,
  lastEval: null,
  bytesIn: 0,
  bytesOut: 0,
  error: null,
};
window.__edgefedNode = state;
let agent: AgentCore | null = null;

function log(line: string): void {
  const stamp = new Date().toISOString().slice(11, 19);
  el('log').textContent = `${stamp}  ${line}\n${el('log').textContent ?? ''}`.slice(0, 20_000);
  console.log(line);
}

const pageLog: AgentLog = {
  info: (fields, message) => log(`${message} ${JSON.stringify(fields)}`),
  warn: (fields, message) => log(`WARN ${message} ${JSON.stringify(fields)}`),
};

const input = (id: string) => el<HTMLInputElement>(id);
const fmtBytes = (n: number) =>
  n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(2)} MiB`;
const fmtMetric = (m: { round: number; loss: number; accuracy: number } | null) =>
  m ? `round ${m.round}: loss ${m.loss.toFixed(4)}, accuracy ${(100 * m.accuracy).toFixed(2)}%` : '-';

function render(): void {
  if (agent)
    Object.assign(state, {
      bytesIn: agent.stats.bytesIn,
      bytesOut: agent.stats.bytesOut,
      lastTrain: agent.stats.lastTrain,
      lastEval: agent.stats.lastEval,
    });
  const status = el('status');
  status.dataset.state = state.state;
  status.textContent =
    state.state === 'error'
      ? `Error: ${state.error}`
      : state.state === 'connected'
        ? `Connected as node ${state.nodeId} (${state.name})`
        : state.state === 'disconnected'
          ? 'Disconnected: reconnecting...'
          : state.state === 'starting'
            ? 'Starting...'
            : 'Not started';
  const rows: [string, string][] = [
    ['node', state.nodeId === null ? state.name || '-' : `${state.name} (id ${state.nodeId})`],
    ['kernels', state.kernels || '-'],
    ['local examples', state.examples ? String(state.examples) : '-'],
    [
      'rounds contributed',
      state.roundsContributed.length
        ? `${state.roundsContributed.length} (${state.roundsContributed.join(', ')})`
        : '0',
    ],
    ['last training', fmtMetric(state.lastTrain)],
    ['last evaluation', fmtMetric(state.lastEval)],
    ['bytes in / out', `${fmtBytes(state.bytesIn)} / ${fmtBytes(state.bytesOut)}`],
  ];
  el('progress').replaceChildren(
    ...rows.map(([k, v]) => {
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      const td = document.createElement('td');
      th.textContent = k;
      td.textContent = v;
      td.dataset.field = k.replaceAll(' ', '-');
      tr.append(th, td);
      return tr;
    }),
  );
}

function onEvent(e: AgentEvent): void {
  if (e.type === 'connected') Object.assign(state, { state: 'connected', nodeId: e.nodeId });
  else if (e.type === 'disconnected') state.state = 'disconnected';
  else if (e.type === 'trained') {
    if (!state.roundsContributed.includes(e.round)) state.roundsContributed.push(e.round);
    log(
      `round ${e.round}: sent an update from ${e.numExamples} examples (loss ${e.loss.toFixed(4)}, accuracy ${(100 * e.accuracy).toFixed(2)}%)`,
    );
  } else if (e.type === 'failed') log(`round ${e.round} failed here: ${e.message}`);
  render();
}

/** The node's data from the form: the MNIST shard from the coordinator, or the picked CSV file. */
async function loadData(coordinator: string, name: string): Promise<LocalData> {
  if (input('source-csv').checked) {
    const file = input('csv-file').files?.[0];
    if (!file) throw new Error('pick a CSV file, or choose the MNIST shard');
    const label = input('label').value.trim();
    return csvLocalData(await file.text(), file.name, name, label ? { label } : {});
  }
  const shard = input('shard').value.trim();
  parseShardSpec(shard, 'MNIST shard');
  const url = new URL(`/v1/node-data/mnist-shard?shard=${encodeURIComponent(shard)}`, coordinator).href;
  return holdOutValidation(decodeSlice(await fetchBytes(url, authHeaders()), `mnist-shard ${shard}`).train, name);
}

async function start(): Promise<void> {
  if (agent) return;
  el<HTMLButtonElement>('start').disabled = true;
  Object.assign(state, { state: 'starting', error: null });
  render();
  try {
    const coordinator = new URL(input('coordinator').value.trim()).href;
    const name = input('name').value.trim();
    if (!NAME_RE.test(name)) throw new Error(`node name must be 1-128 letters, digits or _ . : - (got '${name}')`);
    state.name = name;
    const identity = loadIdentity(localStorage, coordinator, name);
    const token = input('token').value.trim();
    if (!identity.enrolled && !token)
      throw new Error('this browser has not enrolled this node name yet: a join token is needed');
    const { kernels, note } = await chooseKernels(params);
    state.kernels = `${kernels.name} (${note})`;
    log(`kernels: ${state.kernels}`);
    const data = await loadData(coordinator, name);
    state.examples = data.train.n;
    log(
      `data: ${data.train.n} training + ${data.validation.n} validation examples, features [${data.train.featureShape.join(', ')}]`,
    );
    render();
    agent = new AgentCore(
      {
        coordinator,
        name,
        data,
        tags: { runtime: 'browser' },
        powerClass: 'browser',
        log: pageLog,
        secretKey: identity.secretKey,
        joinToken: identity.enrolled ? undefined : token,
        onEvent: (e) => {
          if (e.type === 'enrolled') saveIdentity(localStorage, coordinator, name, { ...identity, enrolled: true });
          if (e.type === 'rejected' && e.code === 'unauthenticated' && /not enrolled/.test(e.message)) {
            // The coordinator forgot this key (a new database, say): retrying cannot help, a new token can.
            saveIdentity(localStorage, coordinator, name, { ...identity, enrolled: false });
            stopWithError(
              `the coordinator does not know this tab's key for '${name}': enter a new join token and start again`,
            );
            return;
          }
          onEvent(e);
        },
      },
      browserPlatform(kernels),
    );
    await agent.start();
  } catch (e) {
    stopWithError(e instanceof Error ? e.message : String(e));
  }
  render();
}

function stopWithError(message: string): void {
  agent?.stop();
  agent = null;
  Object.assign(state, { state: 'error', error: message });
  log(`error: ${message}`);
  el<HTMLButtonElement>('start').disabled = false;
  render();
}

function prefill(): void {
  input('coordinator').value = params.get('coordinator') ?? location.origin;
  input('token').value = params.get('token') ?? '';
  input('name').value = params.get('name') ?? `browser-${Math.random().toString(36).slice(2, 8)}`;
  input('shard').value = params.get('shard') ?? '0/10';
  input('label').value = params.get('label') ?? '';
  input(params.get('source') === 'csv' ? 'source-csv' : 'source-mnist').checked = true;
  el('form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void start();
  });
  setInterval(render, 1000);
  render();
  if (params.get('autostart') === '1') void start();
}

prefill();
