/** The dashboard's panels, each rendered from plain data into its container (text only, see dom.ts). */
import type { EventView, NodeView, RoundView, RunView } from '../../src/coordinator/live-protocol.js';
import { failureKind } from '../../src/coordinator/failure-kind.js';
import { ago, bytes, h, num, svg } from './dom.js';

export interface ModelVersion {
  version: number;
  round: number;
  sha256: string;
  testAccuracy: number | null;
  createdAt: number;
}

const runName = (r: RunView): string => {
  const c = r.config as { name?: unknown; model?: unknown; rounds?: unknown } | null;
  return `#${r.id} ${typeof c?.name === 'string' ? c.name : 'run'}${typeof c?.model === 'string' ? ` (${c.model})` : ''}`;
};

export interface RunListHandlers {
  select: (id: number) => void;
  /** The run's compare box was ticked (true) or cleared. */
  compare: (id: number, on: boolean) => void;
}

export function renderRuns(
  el: HTMLElement,
  runs: RunView[],
  selected: number | null,
  compared: ReadonlySet<number>,
  on: RunListHandlers,
): void {
  if (runs.length === 0) {
    el.replaceChildren(h('li', { class: 'empty' }, 'no runs yet'));
    return;
  }
  el.replaceChildren(
    ...[...runs].reverse().map((r) => {
      const total = (r.config as { rounds?: unknown } | null)?.rounds;
      const box = h('input', {
        type: 'checkbox',
        class: 'compare',
        title: 'compare this run',
        'aria-label': `compare run ${r.id}`,
      });
      box.checked = compared.has(r.id);
      box.addEventListener('click', (e) => e.stopPropagation());
      box.addEventListener('change', () => on.compare(r.id, box.checked));
      const li = h(
        'li',
        { 'data-run-id': String(r.id), 'aria-selected': String(r.id === selected) },
        box,
        runName(r),
        h(
          'span',
          { class: 'status' },
          `${r.status}, ${r.roundsCompleted}${typeof total === 'number' ? `/${total}` : ''} rounds`,
        ),
      );
      if (r.error) li.title = r.error;
      li.addEventListener('click', () => on.select(r.id));
      return li;
    }),
  );
}

/** What a new operator sees before anything has happened: what to run next. */
export function renderEmptyState(el: HTMLElement, runs: number, nodes: number): void {
  el.hidden = runs > 0;
  if (runs > 0) return;
  el.replaceChildren(
    h('h2', {}, 'Nothing to show yet'),
    h(
      'p',
      {},
      nodes === 0
        ? 'No node has joined this coordinator and no run exists. Start nodes on your devices, then create a run:'
        : `${nodes} node${nodes === 1 ? '' : 's'} enrolled, no run yet. Create one:`,
    ),
    h(
      'pre',
      {},
      [
        "# a join token for each device (admin token from the coordinator's start-up output)",
        'curl -X POST -H "authorization: Bearer $ADMIN" $URL/v1/admin/join-tokens',
        'edgefed node --coordinator $URL --join-token-file token.txt --data mnist-partition:0/10',
        '# a run over the nodes that are connected',
        'curl -X POST -H "authorization: Bearer $ADMIN" -H "content-type: application/json" \\',
        '  -d \'{"model":"mlp","rounds":20,"minNodes":2}\' $URL/v1/runs',
        '# or everything on this machine at once:  npm start   (edgefed up)',
      ].join('\n'),
    ),
  );
}

export function runTitle(r: RunView | undefined): string {
  return r ? `${runName(r)}: ${r.status}` : '';
}

/** With the live feed down the page cannot know who is online: it says so instead of showing stale dots. */
export function renderNodes(body: HTMLElement, nodes: NodeView[], now: number, feedOpen = true): void {
  if (nodes.length === 0) {
    body.replaceChildren(h('tr', {}, h('td', { colspan: '11', class: 'empty' }, 'no node has enrolled yet')));
    return;
  }
  body.replaceChildren(
    ...nodes.map((n) => {
      const r = n.resources;
      const status = !feedOpen ? 'unknown' : n.online ? 'online' : 'offline';
      return h(
        'tr',
        { 'data-node-id': String(n.id), 'data-online': String(feedOpen && n.online), 'data-status': status },
        h(
          'td',
          { title: feedOpen ? '' : 'the live feed is disconnected' },
          h('span', { class: `dot ${status}` }),
          status,
        ),
        h('td', { title: r.platform ?? '' }, `${n.name} (${n.id})`),
        h('td', { class: 'num' }, num(r.cores)),
        h('td', { class: 'num' }, r.memoryMb !== undefined ? bytes(r.memoryMb * 2 ** 20) : '–'),
        h('td', { class: 'num' }, num(r.samplesPerSecond)),
        h('td', { class: 'num' }, r.bandwidthMbps !== undefined ? `${num(r.bandwidthMbps, 1)} Mb/s` : '–'),
        h('td', {}, ...Object.entries(n.tags).map(([k, v]) => h('span', { class: 'tag' }, `${k}=${v}`))),
        h('td', { title: new Date(n.lastSeen).toISOString() }, ago(n.lastSeen, now)),
        h('td', { class: 'num' }, n.roundsContributed),
        h('td', { class: 'num' }, bytes(n.bytesSent)),
        h('td', { class: 'num' }, bytes(n.bytesReceived)),
      );
    }),
  );
}

/** One small bar chart per node that shared its label counts. */
export function renderHistograms(el: HTMLElement, nodes: NodeView[]): void {
  const shared = nodes.filter((n) => Array.isArray(n.resources.labelCounts) && n.resources.labelCounts.length > 0);
  if (shared.length === 0) {
    el.replaceChildren(h('p', { class: 'empty' }, 'no node shares its label counts (edgefed node --share-labels)'));
    return;
  }
  const W = 170;
  const H = 70;
  el.replaceChildren(
    ...shared.map((n) => {
      const counts = n.resources.labelCounts!;
      const max = Math.max(1, ...counts);
      const total = counts.reduce((a, b) => a + b, 0);
      const bw = W / counts.length;
      const chart = svg('svg', { width: W, height: H + 12, viewBox: `0 0 ${W} ${H + 12}`, role: 'img' });
      counts.forEach((c, i) => {
        const bh = (c / max) * H;
        const bar = svg('rect', { x: i * bw + 1, y: H - bh, width: Math.max(1, bw - 2), height: bh });
        bar.append(svg('title', {}, `class ${i}: ${c}`));
        chart.append(bar);
        if (counts.length <= 20)
          chart.append(svg('text', { x: i * bw + bw / 2, y: H + 10, 'text-anchor': 'middle' }, String(i)));
      });
      return h(
        'figure',
        { class: 'histogram', 'data-node-id': String(n.id) },
        chart,
        h('figcaption', {}, `${n.name}: ${total} examples`),
      );
    }),
  );
}

/** Rows the timeline shows at first; scrolling to its end shows this many more. */
export const TIMELINE_PAGE = 50;

/**
 * Rounds newest first: duration bar, then each selected node as contributed, straggler or failed. Only the
 * newest `limit` rounds are in the page, so a 5,000-round run does not build 5,000 rows.
 */
export function renderTimeline(el: HTMLElement, rounds: RoundView[], limit = TIMELINE_PAGE): void {
  el.dataset.total = String(rounds.length);
  if (rounds.length === 0) {
    el.dataset.shown = '0';
    el.replaceChildren(h('p', { class: 'empty' }, 'no round committed yet'));
    return;
  }
  const shown = rounds.slice(-limit).reverse();
  el.dataset.shown = String(shown.length);
  const longest = Math.max(1e-9, ...shown.map((r) => r.seconds));
  el.replaceChildren(
    ...shown.map((r) => {
      const failed = new Map(r.failures.map((f) => [f.nodeId, f.error]));
      const chips = r.selected.map((id) => {
        const error = failed.get(id);
        if (error === undefined) {
          const ok = r.contributed.includes(id);
          return h(
            'span',
            { class: `chip ${ok ? 'ok' : 'idle'}`, title: ok ? `node ${id} contributed` : `node ${id} was not needed` },
            id,
          );
        }
        return h('span', { class: `chip ${failureKind(error)}`, title: `node ${id}: ${error}` }, id);
      });
      return h(
        'div',
        { class: 'row', 'data-round': String(r.round) },
        h('span', { class: 'label' }, `r${r.round}`),
        h('span', { class: 'secs' }, `${r.seconds.toFixed(2)} s`),
        h('span', {
          class: 'bar',
          style: `width:${Math.max(2, (r.seconds / longest) * 160).toFixed(0)}px`,
          title: r.fused ? 'fused' : 'not fused: too few valid updates',
        }),
        ...chips,
        r.fused ? null : h('span', { class: 'empty' }, 'not fused'),
      );
    }),
    ...(shown.length < rounds.length
      ? [h('p', { class: 'more' }, `${rounds.length - shown.length} older rounds: scroll for more`)]
      : []),
  );
}

/** The last round's personalised accuracy (mean, P10, min over nodes); hidden for runs without it. */
export function renderPersonal(el: HTMLElement, rounds: RoundView[]): void {
  const last = [...rounds].reverse().find((r) => typeof r.personalizedAccuracyMean === 'number');
  el.hidden = !last;
  if (!last) return el.replaceChildren();
  el.replaceChildren(
    `personalised accuracy (nodes' own models on their held-out data), round ${last.round}: `,
    ...(
      [
        ['mean', last.personalizedAccuracyMean],
        ['P10', last.personalizedAccuracyP10],
        ['min', last.personalizedAccuracyMin],
      ] as const
    ).flatMap(([label, v], i) => [
      i > 0 ? ', ' : '',
      `${label} `,
      h('b', { 'data-personal': label }, num(v ?? null, 4)),
    ]),
  );
}

export function renderModels(el: HTMLElement, runId: number | null, models: ModelVersion[] | null): void {
  if (runId === null || models === null || models.length === 0) {
    el.replaceChildren(
      h(
        'p',
        { class: 'empty' },
        models === null
          ? 'the model registry has no versions for this run (or is not available)'
          : 'no model version yet',
      ),
    );
    return;
  }
  const rows = [...models]
    .reverse()
    .map((m) =>
      h(
        'tr',
        { 'data-version': String(m.version) },
        h('td', {}, `v${m.version}`),
        h('td', { class: 'num' }, `round ${m.round}`),
        h('td', { class: 'num' }, num(m.testAccuracy, 4)),
        h('td', { title: m.sha256 }, m.sha256.slice(0, 12)),
        h('td', {}, h('a', { href: `/v1/runs/${runId}/models/${m.version}/model.json`, download: '' }, 'model.json')),
      ),
    );
  el.replaceChildren(
    h(
      'table',
      { class: 'models' },
      h(
        'thead',
        {},
        h('tr', {}, ...['version', 'round', 'test acc.', 'sha256', 'download'].map((t) => h('th', {}, t))),
      ),
      h('tbody', {}, ...rows),
    ),
  );
}

export function renderEvents(el: HTMLElement, events: EventView[]): void {
  if (events.length === 0) {
    el.replaceChildren(h('li', { class: 'empty' }, 'no events for this run yet'));
    return;
  }
  el.replaceChildren(
    ...events
      .slice(-50)
      .reverse()
      .map((e) =>
        h(
          'li',
          { 'data-kind': e.kind },
          `${new Date(e.at).toLocaleTimeString()} ${e.kind} `,
          h('code', {}, JSON.stringify(e.data).slice(0, 200)),
        ),
      ),
  );
}
