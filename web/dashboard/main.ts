/**
 * The EdgeFed dashboard: runs, accuracy and loss per round, nodes, label histograms, round timeline,
 * model versions and events. It loads a run's history over REST and then follows the live feed
 * (/v1/live); a round that arrives out of sequence triggers a reload, so a missed message cannot leave
 * a gap. No framework: each panel re-renders from the state below.
 */
import './style.css';
import type { EventView, LiveMessage, NodeView, RoundView, RunView } from '../../src/coordinator/live-protocol.js';
import { download, getJson } from './api.js';
import { accuracyChart, lossChart } from './charts.js';
import { ComparePanel, type ComparedRun } from './compare.js';
import { byId } from './dom.js';
import { connectLive, type LiveState } from './live-client.js';
import { authHeaders } from '../shared/read-token.js';
import { roundsCsv, roundsJson } from './records.js';
import {
  renderEmptyState,
  renderEvents,
  renderHistograms,
  renderModels,
  renderNodes,
  renderPersonal,
  renderRuns,
  renderTimeline,
  runTitle,
  TIMELINE_PAGE,
  type ModelVersion,
} from './views.js';

const state = {
  runs: new Map<number, RunView>(),
  selected: null as number | null,
  rounds: [] as RoundView[],
  events: [] as EventView[],
  nodes: [] as NodeView[],
  models: null as ModelVersion[] | null,
  /** Runs ticked for comparison, in the order they were ticked, with their records once loaded. */
  compared: new Map<number, RoundView[] | null>(),
  timelineLimit: TIMELINE_PAGE,
  feedOpen: false,
};

const accuracy = accuracyChart(byId('acc-chart'));
const loss = lossChart(byId('loss-chart'));
const nodesBody = byId('nodes').querySelector('tbody')!;
const compare = new ComparePanel(byId('compare-section'), byId('compare-chart'), byId('compare-table'));

function renderRunPanels(): void {
  renderRuns(byId('runs'), [...state.runs.values()], state.selected, new Set(state.compared.keys()), {
    select: (id) => void select(id),
    compare: (id, on) => void toggleCompare(id, on),
  });
  byId('run-title').textContent = runTitle(state.selected === null ? undefined : state.runs.get(state.selected));
  renderEmptyState(byId('empty-state'), state.runs.size, state.nodes.length);
  byId('downloads').hidden = state.selected === null;
}

function renderRounds(): void {
  accuracy.update(state.rounds);
  renderPersonal(byId('personal-summary'), state.rounds);
  loss.update(state.rounds);
  renderTimeline(byId('timeline'), state.rounds, state.timelineLimit);
}

function renderNodePanels(): void {
  renderNodes(nodesBody, state.nodes, Date.now(), state.feedOpen);
  renderHistograms(byId('histograms'), state.nodes);
  renderEmptyState(byId('empty-state'), state.runs.size, state.nodes.length);
}

function renderCompare(): void {
  const runs: ComparedRun[] = [];
  for (const [id, rounds] of state.compared) {
    const run = state.runs.get(id);
    if (run && rounds) runs.push({ run, rounds });
  }
  compare.render(runs);
}

async function toggleCompare(id: number, on: boolean): Promise<void> {
  if (!on) {
    state.compared.delete(id);
    renderCompare();
    return;
  }
  state.compared.set(id, null);
  const run = await getJson<RunView & { rounds: RoundView[] }>(`/v1/runs/${id}`);
  if (!state.compared.has(id)) return;
  if (run) {
    const { rounds, ...info } = run;
    state.runs.set(id, info);
    state.compared.set(id, rounds);
  } else {
    state.compared.delete(id);
  }
  renderRunPanels();
  renderCompare();
}

function downloadRecords(format: 'csv' | 'json'): void {
  const run = state.selected === null ? undefined : state.runs.get(state.selected);
  if (!run) return;
  if (format === 'csv') download(`edgefed-run-${run.id}-rounds.csv`, 'text/csv', roundsCsv(state.rounds));
  else download(`edgefed-run-${run.id}.json`, 'application/json', roundsJson(run, state.rounds));
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
  state.timelineLimit = TIMELINE_PAGE;
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
      if (
        state.selected === null ||
        (m.run.status === 'running' && state.runs.get(state.selected)?.status !== 'running')
      )
        void select(m.run.id);
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
        if (state.compared.has(m.runId)) {
          state.compared.set(m.runId, state.rounds);
          renderCompare();
        }
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
  if (state.feedOpen !== (s === 'open')) {
    state.feedOpen = s === 'open';
    renderNodePanels();
  }
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
    const a = Object.assign(document.createElement('a'), {
      href: URL.createObjectURL(await r.blob()),
      download: 'model.json',
    });
    a.click();
    URL.revokeObjectURL(a.href);
  });
});
renderEvents(byId('events'), []);
connectLive(onMessage, onState);
setInterval(() => renderNodes(nodesBody, state.nodes, Date.now(), state.feedOpen), 1000); // "last seen" keeps counting
byId('download-csv').addEventListener('click', () => downloadRecords('csv'));
byId('download-json').addEventListener('click', () => downloadRecords('json'));
byId('timeline').addEventListener('scroll', (e) => {
  const el = e.currentTarget as HTMLElement;
  if (el.scrollTop + el.clientHeight < el.scrollHeight - 40 || state.timelineLimit >= state.rounds.length) return;
  state.timelineLimit += TIMELINE_PAGE;
  renderTimeline(el, state.rounds, state.timelineLimit);
});
window.addEventListener('resize', () => {
  accuracy.resize();
  loss.resize();
  compare.resize();
});
