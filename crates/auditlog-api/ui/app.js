// The audit page: wires the filter bar, the chart, the table, paging, export and the live
// view to the API, with the view's state in the URL.
//
//   URL ──readState──► state ──load──► fetchPage ∥ fetchHistogram   (concurrent requests)
//    ▲                                    │             │
//    └──writeState◄── apply / next / previous / toggles  table       chart
//
// Nothing here is inline in the HTML: the server's Content-Security-Policy allows only
// this origin's module scripts.

import { ApiError, download, fetchHistogram, fetchPage, setTokenPrompt } from './api.js';
import { ActivityChart } from './chart.js';
import { FilterBar, withKey } from './filter.js';
import { formatRange, utcDay } from './format.js';
import { readState, writeState } from './state.js';
import { EventsTable } from './table.js';

const LIVE_POLL_MS = 2000;
const LIVE_WINDOW = 100;

const $ = (id) => document.getElementById(id);

let state = readState();
let nextCursor = '';
let loadAbort = null;
let chartQuery = null;
let live = null;

const table = new EventsTable({
  body: $('rows'),
  onFilter: (key, value) => apply(withKey(state.q, key, value)),
});

const filterBar = new FilterBar({
  form: $('filter-form'),
  input: $('filter-input'),
  suggestions: $('suggestions'),
  presetsButton: $('presets-button'),
  presetsMenu: $('presets-menu'),
  errors: $('filter-errors'),
  echo: $('filter-echo'),
  onApply: (query) => apply(query),
});

const chart = new ActivityChart({
  container: $('chart'),
  caption: $('chart-caption'),
  onRange: (fromMs, toMs) => {
    // The filter's dates are whole UTC days; `to` is exclusive, so its day ends 1 ms before.
    const from = utcDay(fromMs);
    const to = utcDay(Math.max(fromMs, toMs - 1));
    apply(withKey(withKey(state.q, 'date_from', from), 'date_to', to));
  },
});

setTokenPrompt((message) => new Promise((resolve) => {
  const dialog = $('token-dialog');
  const input = $('token-input');
  $('token-error').textContent = message || '';
  input.value = '';
  const form = $('token-form');
  const submit = (event) => {
    event.preventDefault();
    if (!input.value.trim()) return;
    form.removeEventListener('submit', submit);
    dialog.close();
    resolve(input.value.trim());
  };
  form.addEventListener('submit', submit);
  if (!dialog.open) dialog.showModal();
  input.focus();
}));

function syncControls() {
  filterBar.value = state.q;
  $('page-size').value = String(state.limit);
  $('utc-toggle').checked = state.utc;
  $('live-toggle').checked = state.live;
  table.setUtc(state.utc);
}

function navigate(changes, options) {
  state = { ...state, ...changes };
  writeState(state, options);
  syncControls();
  return load();
}

function apply(query) {
  return navigate({ q: query, page: 1, after: '', trail: [] });
}

function showError(error) {
  const validations = error instanceof ApiError && error.validations.length
    ? error.validations
    : [{ field: '', detail: error instanceof ApiError ? [error.body.message, error.body.detail].filter(Boolean).join(' ') : String(error) }];
  filterBar.showValidations(state.q, validations);
}

async function loadChart(signal) {
  if (chartQuery === state.q) return;
  try {
    const histogram = await fetchHistogram(state.q, { signal });
    chartQuery = state.q;
    chart.show(histogram);
  } catch (error) {
    if (error.name !== 'AbortError') $('chart-caption').textContent = 'The chart could not be loaded.';
  }
}

async function loadPage(signal) {
  const busy = $('events');
  busy.setAttribute('aria-busy', 'true');
  try {
    const page = await fetchPage({ q: state.q, limit: state.limit, after: state.after }, { signal });
    const started = performance.now();
    filterBar.showValidations(state.q, []);
    table.render(page.logs);
    nextCursor = page.nextCursor;
    const first = (state.page - 1) * state.limit + 1;
    $('count').textContent = formatRange(first, page.logs.length, page.count, page.countCap);
    $('page-range').textContent = `Page ${state.page}`;
    $('previous-page').disabled = state.page <= 1;
    $('next-page').disabled = !nextCursor;
    // What the page itself spent after the API answered: read by the browser tests.
    document.body.dataset.renderMs = (performance.now() - started).toFixed(1);
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded ?? 0) + 1);
    if (state.live) startLive(state.page === 1 ? page.logs : null);
  } catch (error) {
    if (error.name === 'AbortError') return;
    table.render([]);
    $('count').textContent = error instanceof ApiError && error.status === 400 ? 'Invalid filter' : 'Could not load events';
    $('next-page').disabled = true;
    $('previous-page').disabled = state.page <= 1;
    showError(error);
    chart.show({ bucket_seconds: 1, buckets: [], total: 0 });
    chartQuery = null;
    document.body.dataset.loaded = String(Number(document.body.dataset.loaded ?? 0) + 1);
  } finally {
    busy.removeAttribute('aria-busy');
  }
}

/** The page and the chart, requested at once. */
function load() {
  loadAbort?.abort();
  loadAbort = new AbortController();
  stopLive();
  return Promise.all([loadPage(loadAbort.signal), loadChart(loadAbort.signal)]);
}

/** Polls for events newer than the page's newest, and shows them above the rows without
 * touching the page being read. `baseline` is page 1's rows, or null to fetch them. Until
 * the baseline is known nothing counts as new, so a failed first poll is tried again as a
 * first poll (not taken as a window of new events), and `data-live` says "on" only from
 * then: an event stored before it may be in the baseline and never shown as new. */
function startLive(baseline) {
  stopLive();
  const query = state.q;
  const session = { seen: new Set(), newestMs: 0, timer: 0, added: 0, ready: false };
  live = session;
  const remember = (logs) => {
    for (const log of logs) {
      session.seen.add(log.id);
      session.newestMs = Math.max(session.newestMs, Date.parse(log.time));
    }
  };
  const ready = (logs) => {
    remember(logs);
    session.ready = true;
    document.body.dataset.live = 'on';
  };
  const poll = async () => {
    try {
      const page = await fetchPage({ q: query, limit: LIVE_WINDOW });
      if (live !== session) return;
      if (!session.ready) {
        ready(page.logs);
      } else {
        const fresh = page.logs.filter((log) => !session.seen.has(log.id) && Date.parse(log.time) >= session.newestMs);
        remember(page.logs);
        if (fresh.length) {
          table.prepend(fresh);
          session.added += fresh.length;
          const banner = $('live-banner');
          banner.hidden = false;
          banner.textContent = `${session.added} new event${session.added === 1 ? '' : 's'} since live view started (shown at the top, marked new)`;
        }
      }
    } catch {
      // A failed poll is retried on the next tick.
    }
    if (live === session) session.timer = setTimeout(poll, LIVE_POLL_MS);
  };
  if (baseline) {
    ready(baseline);
    session.timer = setTimeout(poll, LIVE_POLL_MS);
  } else {
    poll();
  }
}

function stopLive() {
  if (live) clearTimeout(live.timer);
  live = null;
  $('live-banner').hidden = true;
  delete document.body.dataset.live;
}

$('next-page').addEventListener('click', () => {
  if (!nextCursor) return;
  navigate({ trail: [...state.trail, state.after], after: nextCursor, page: state.page + 1 });
});

$('previous-page').addEventListener('click', async () => {
  if (state.page <= 1) return;
  const trail = [...state.trail];
  let after = '';
  if (trail.length === state.page - 1) {
    after = trail.pop();
  } else if (state.page > 2) {
    // Opened from a link, so no trail: the row before the previous page gives its cursor.
    const before = await fetchPage({ q: state.q, limit: 1, offset: (state.page - 2) * state.limit - 1 });
    after = before.nextCursor;
    trail.length = 0;
  }
  navigate({ trail, after, page: state.page - 1 });
});

$('page-size').addEventListener('change', (event) => navigate({ limit: Number(event.target.value), page: 1, after: '', trail: [] }));

$('utc-toggle').addEventListener('change', (event) => {
  state = { ...state, utc: event.target.checked };
  writeState(state, { replace: true });
  table.setUtc(state.utc);
});

$('live-toggle').addEventListener('change', (event) => {
  state = { ...state, live: event.target.checked };
  writeState(state, { replace: true });
  if (state.live) startLive(null);
  else stopLive();
});

for (const format of ['csv', 'ndjson']) {
  $(`export-${format}`).addEventListener('click', () => download(state.q, format).catch(showError));
}

window.addEventListener('popstate', () => {
  state = readState();
  syncControls();
  load();
});

syncControls();
writeState(state, { replace: true });
load();
