// The audit API as the page uses it. The token, when the server wants one, is kept in
// sessionStorage (this tab only) and sent in the Authorization header, never in a URL.

const TOKEN_KEY = 'auditlog.token';
const NEXT_CURSOR_HEADER = 'x-audit-next-cursor';

/** A non-2xx answer, with the API's body (`message`, `detail`, `validations`). */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body ?? {};
  }

  get validations() {
    return Array.isArray(this.body.validations) ? this.body.validations : [];
  }
}

let askForToken = async () => { throw new Error('no token prompt'); };
let pendingPrompt = null;

/** Sets what asks the auditor for a token on a 401: `async (message) => token`. */
export function setTokenPrompt(prompt) {
  askForToken = prompt;
}

export function hasToken() {
  return Boolean(sessionStorage.getItem(TOKEN_KEY));
}

function headers() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function urlFor(path, params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== '' && value !== undefined && value !== null) search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

async function bodyOf(response) {
  try {
    return await response.json();
  } catch {
    return {};
  }
}

/** GET with the token; a 401 asks for a token once (shared by concurrent requests), then retries. */
async function get(path, params, { signal } = {}) {
  for (;;) {
    const response = await fetch(urlFor(path, params), { headers: headers(), signal, cache: 'no-store' });
    if (response.status !== 401) {
      if (!response.ok) throw new ApiError(response.status, await bodyOf(response));
      return response;
    }
    const body = await bodyOf(response);
    sessionStorage.removeItem(TOKEN_KEY);
    pendingPrompt ??= askForToken(body.detail || body.message).finally(() => { pendingPrompt = null; });
    const token = await pendingPrompt;
    sessionStorage.setItem(TOKEN_KEY, token);
  }
}

/** One page: `{logs, count, countCap, nextCursor}`. */
export async function fetchPage({ q, limit, after, offset }, options) {
  const response = await get('/api/v2/audit', { q, limit, after, offset }, options);
  const body = await response.json();
  return {
    logs: body.audit_logs ?? [],
    count: body.count ?? 0,
    countCap: body.count_cap ?? 0,
    nextCursor: response.headers.get(NEXT_CURSOR_HEADER) ?? '',
  };
}

/** The chart's buckets: `{bucket_seconds, buckets: [{start, count}], total}`. */
export async function fetchHistogram(q, options) {
  return (await get('/api/v2/audit/histogram', { q }, options)).json();
}

/** Completions for `key:` (or keys, for an empty key) that start with `prefix`. */
export async function fetchSuggestions(key, prefix, options) {
  return (await (await get('/api/v2/audit/suggest', { key, prefix }, options)).json()).values ?? [];
}

/** Downloads the export of `q`. Without a token a plain link streams it to disk; with one
 * the file is fetched with the header (a link cannot carry it) and saved from memory. */
export async function download(q, format) {
  const href = urlFor('/api/v2/audit/export', { q, format });
  const name = `audit-logs.${format}`;
  const anchor = document.createElement('a');
  anchor.download = name;
  if (hasToken()) {
    const blob = await (await get('/api/v2/audit/export', { q, format })).blob();
    anchor.href = URL.createObjectURL(blob);
    setTimeout(() => URL.revokeObjectURL(anchor.href), 60_000);
  } else {
    // Ask first, so a server that wants a token gets one before the download starts.
    await get('/api/v2/audit', { q, limit: 1 });
    if (hasToken()) return download(q, format);
    anchor.href = href;
  }
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
}
