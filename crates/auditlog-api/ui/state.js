// The view's state lives in the URL (filter, page, page size, toggles); the cursors of the
// pages before the current one live in the history entry, so Back, Forward and Previous
// walk the same pages and a copied link opens the same view.

export const PAGE_SIZES = [25, 50, 100, 250];
export const DEFAULT_PAGE_SIZE = 25;

/** The view described by the current URL and history entry. */
export function readState() {
  const params = new URLSearchParams(window.location.search);
  const limit = Number(params.get('limit'));
  const page = Number(params.get('page'));
  const trail = Array.isArray(window.history.state?.trail) ? window.history.state.trail : [];
  return {
    q: params.get('q') ?? '',
    limit: PAGE_SIZES.includes(limit) ? limit : DEFAULT_PAGE_SIZE,
    after: params.get('after') ?? '',
    page: Number.isInteger(page) && page > 1 ? page : 1,
    utc: params.get('utc') === '1',
    live: params.get('live') === '1',
    trail,
  };
}

/** The URL of a view; defaults are left out so links stay short. */
export function urlOf(state) {
  const params = new URLSearchParams();
  if (state.q) params.set('q', state.q);
  if (state.limit !== DEFAULT_PAGE_SIZE) params.set('limit', String(state.limit));
  if (state.page > 1 && state.after) {
    params.set('page', String(state.page));
    params.set('after', state.after);
  }
  if (state.utc) params.set('utc', '1');
  if (state.live) params.set('live', '1');
  const search = params.toString();
  return `${window.location.pathname}${search ? `?${search}` : ''}`;
}

/** Records a new view: a new history entry, or the current one replaced. */
export function writeState(state, { replace = false } = {}) {
  const entry = { trail: state.trail };
  const url = urlOf(state);
  if (replace) window.history.replaceState(entry, '', url);
  else window.history.pushState(entry, '', url);
}
