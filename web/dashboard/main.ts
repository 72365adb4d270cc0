/**
 * The EdgeFed dashboard: runs, accuracy and loss per round, nodes, label histograms, round timeline,
 * model versions and events. It loads a run's history over REST and then follows the live feed
 * (/v1/live); a round that arrives out of sequence triggers a reload, so a missed message cannot leave
 * a gap. No framework: each panel re-renders from the state below.
 */
import './style.css';
import type { EventView, LiveMessage, NodeView, RoundView, RunView } from '../../src/coordinator/live-protocol.js';
import { accuracyChart, lossChart } from './charts.js';
import { byId } from './dom.js';
import { connectLive, type LiveState } from './live-client.js';
import { authHeaders } from '../shared/read-token.js';
import { renderEvents, renderHistograms, renderModels, renderNodes, renderRuns, renderTimeline, runTitle, type ModelVersion } from './views.js';

const state = {
  runs: new Map<number, RunView>(),
  selected: null as number | null,
  rounds: [] as RoundView[],
  events: [] as EventView[],
  nodes: [] as NodeView[],
  models: null as ModelVersion[] | null,
};

const accuracy = accuracyChart(byId('acc-chart'));
const loss = lossChart(byId('loss-chart'));
const nodesBody = byId('nodes').querySelector('tbody')!;

async function getJson<T>(path: string): Promise<T | null> {
  const r = await fetch(path, { headers: { accept: 'application/json', ...authHeaders() } });
  return r.ok ? ((await r.json()) as T) : null;
}

function renderRunPanels(): void {
  renderRuns(byId('runs'), [...state.runs.values()], state.selected, (id) => void select(id));
  byId('run-title').textContent = runTitle(state.selected === null ? undefined : state.runs.get(state.selected));
}

function renderRounds(): void {
  accuracy.update(state.rounds);
  loss.update(state.rounds);
  renderTimeline(byId('timeline'), state.rounds);
}

function renderNodePanels(): void {
  renderNodes(nodesBody, state.nodes, Date.now());
  renderHistograms(byId('histograms'), state.nodes);
}

let modelsPending = false;
async function loadModels(): Promise<void> {
  if (state.selected === null || modelsPending) return;
  modelsPending = true;
  try {
    const id = state.selected;
    const body = await getJson<{ models?: ModelVersion[] }>(`/v1/runs/${id}/models`).catch(() => null);
    if (id !== state.selected) return;
    state.models = Array.isArray(body?.models) ? body.models : null;
    renderModels(byId('models'), id, state.models);
  } finally {
    modelsPending = false;
  }
}

async function loadRun(id: number): Promise<void> {
  const [run, events] = await Promise.all([
    getJson<RunView & { rounds: RoundView[] }>(`/v1/runs/${id}`),
    getJson<{ events: EventView[] }>(`/v1/runs/${id}/events`),
  ]);
  if (id !== state.selected || !run) return;
  const { rounds, ...info } = run;
  state.runs.set(id, info);
  state.rounds = rounds;
  state.events = events?.events ?? [];
  renderRunPanels();
  renderRounds();
  renderEvents(byId('events'), state.events);
  await loadModels();
}

async function select(id: number): Promise<void> {
  state.selected = id;
  state.rounds = [];
  state.events = [];
  state.models = null;
  renderRunPanels();
  renderRounds();
  await loadRun(id);
}

/** Shows the run most worth watching: the newest running one, else the newest. */
function pickRun(): number | null {
  const runs = [...state.runs.values()];
  const running = runs.filter((r) => r.status === 'running');
  const pick = (running.length > 0 ? running : runs).at(-1);
  return pick?.id ?? null;
}

function onMessage(m: LiveMessage): void {
  switch (m.type) {
    case 'snapshot':
      state.runs = new Map(m.runs.map((r) => [r.id, r]));
      state.nodes = m.nodes;
      renderNodePanels();
      renderRunPanels();
      // After a reconnect the selected run reloads too: messages may have been missed meanwhile.
      if (state.selected === null) {
        const id = pickRun();
        if (id !== null) void select(id);
      } else {
        void loadRun(state.selected);
      }
      break;
    case 'run':
      state.runs.set(m.run.id, m.run);
      renderRunPanels();
      if (state.selected === null || (m.run.status === 'running' && state.runs.get(state.selected)?.status !== 'running')) void select(m.run.id);
      break;
    case 'round': {
      const run = state.runs.get(m.runId);
      if (run && m.record.round > run.roundsCompleted) {
        run.roundsCompleted = m.record.round;
        renderRunPanels();
      }
      if (m.runId !== state.selected) break;
      const last = state.rounds.at(-1)?.round ?? 0;
      if (m.record.round === last + 1) {
        state.rounds.push(m.record);
        renderRounds();
        void loadModels();
      } else if (m.record.round > last + 1) {
        void loadRun(m.runId);
      }
      break;
    }
    case 'event':
      if (m.event.runId !== state.selected) break;
      state.events.push(m.event);
      if (state.events.length > 500) state.events.splice(0, state.events.length - 500);
      renderEvents(byId('events'), state.events);
      break;
    case 'nodes':
      state.nodes = m.nodes;
      renderNodePanels();
      break;
  }
}

function onState(s: LiveState): void {
  const el = byId('live-status');
  el.dataset.state = s;
  el.textContent = s === 'open' ? 'live' : s === 'closed' ? 'disconnected, retrying' : 'connecting';
}

renderRunPanels();
renderRounds();
renderNodePanels();
renderModels(byId('models'), null, null);
// A plain link cannot carry the read token: downloads go through fetch with it.
byId('models').addEventListener('click', (ev) => {
  const link = (ev.target as HTMLElement).closest('a[download]');
  if (!link) return;
  ev.preventDefault();
  void fetch(link.getAttribute('href')!, { headers: authHeaders() }).then(async (r) => {
    if (!r.ok) return;
    const a = Object.assign(document.createElement('a'), { href: URL.createObjectURL(await r.blob()), download: 'model.json' });
    a.click();
    URL.revokeObjectURL(a.href);
  });
});
renderEvents(byId('events'), []);
connectLive(onMessage, onState);
setInterval(() => renderNodes(nodesBody, state.nodes, Date.now()), 1000); // "last seen" keeps counting
window.addEventListener('resize', () => {
  accuracy.resize();
  loss.resize();
});
