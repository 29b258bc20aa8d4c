// The events table: one row per event, a row expands into its diff and details, and a
// click on a value (user, organization, resource id, request id) adds it to the filter.

import { localText, utcText } from './format.js';

const COLUMNS = 8;

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'className') node.className = value;
    else if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

/** A button that adds `key:value` to the filter. */
function filterValue(key, value, label = value) {
  const button = element('button', {
    type: 'button',
    className: 'value',
    'data-filter-key': key,
    'data-filter-value': value,
    title: `Filter by ${key}:${value}`,
  });
  button.textContent = label;
  return button;
}

function shown(value) {
  if (value === undefined || value === null || value === '') return '—';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function diffTable(diff) {
  const fields = Object.keys(diff ?? {});
  if (fields.length === 0) return element('p', { className: 'muted', text: 'No changes recorded.' });
  const body = element('tbody');
  for (const field of fields.sort()) {
    const entry = diff[field] ?? {};
    const row = element('tr', { 'data-field': field });
    row.append(element('th', { scope: 'row', text: field }));
    if (entry.secret) {
      row.className = 'secret';
      row.append(element('td', { colspan: '2', text: 'changed (secret: the value is never shown)' }));
    } else {
      row.append(element('td', { className: 'old', text: shown(entry.old) }), element('td', { className: 'new', text: shown(entry.new) }));
    }
    body.append(row);
  }
  const head = element('thead', {}, element('tr', {}, element('th', { scope: 'col', text: 'Field' }), element('th', { scope: 'col', text: 'Old' }), element('th', { scope: 'col', text: 'New' })));
  return element('table', { className: 'diff', 'aria-label': 'Changes' }, head, body);
}

/** Coder's description with its `{user}` and `{target}` placeholders filled in, as Coder's page does. */
export function describe(log) {
  const user = log.user?.username ?? log.additional_fields?.automatic_actor ?? 'Unknown user';
  return (log.description ?? '').replaceAll('{user}', user).replaceAll('{target}', log.resource_target ?? '').replace(/\s+$/, '');
}

function definitions(pairs) {
  const list = element('dl', { className: 'facts' });
  for (const [term, value] of pairs) list.append(element('dt', { text: term }), element('dd', {}, value));
  return list;
}

function detailOf(log) {
  const additional = Object.entries(log.additional_fields ?? {});
  const single = new URLSearchParams({ q: `request_id:${log.request_id} resource_id:${log.resource_id}` });
  const link = element('a', { href: `${window.location.pathname}?${single}`, className: 'event-link', text: 'Link to this event' });
  return element('div', { className: 'detail-body' },
    element('section', {}, element('h3', { text: 'Diff' }), diffTable(log.diff)),
    element('section', {}, element('h3', { text: 'Additional fields' }),
      additional.length ? definitions(additional.map(([name, value]) => [name, shown(value)])) : element('p', { className: 'muted', text: 'None.' })),
    element('section', {}, element('h3', { text: 'Request' }), definitions([
      ['Request ID', filterValue('request_id', log.request_id)],
      ['Resource ID', filterValue('resource_id', log.resource_id)],
      ['Event ID', log.id],
      ['IP', log.ip || '—'],
      ['User agent', log.user_agent || '—'],
      ['Status', String(log.status_code)],
    ]), link),
  );
}

export class EventsTable {
  /** `onFilter(key, value)` runs when a value is clicked. */
  constructor({ body, onFilter }) {
    this.body = body;
    this.utc = false;
    this.logs = new Map();
    body.addEventListener('click', (event) => {
      const value = event.target.closest('[data-filter-key]');
      if (value) {
        onFilter(value.dataset.filterKey, value.dataset.filterValue);
        return;
      }
      const toggle = event.target.closest('button.expand');
      if (toggle) this.toggle(toggle);
    });
    body.addEventListener('keydown', (event) => {
      const toggle = event.target.closest('button.expand');
      if (!toggle || (event.key !== 'ArrowDown' && event.key !== 'ArrowUp')) return;
      event.preventDefault();
      const toggles = [...body.querySelectorAll('button.expand')];
      const next = toggles[toggles.indexOf(toggle) + (event.key === 'ArrowDown' ? 1 : -1)];
      next?.focus();
    });
  }

  /** One event's row (its detail row is made on first expansion). */
  row(log, { fresh = false } = {}) {
    this.logs.set(log.id, log);
    const failed = log.status_code >= 400;
    const detailId = `detail-${log.id}`;
    const toggle = element('button', { type: 'button', className: 'expand', 'aria-expanded': 'false', 'aria-controls': detailId, 'aria-label': 'Show details' });
    toggle.textContent = '▸';
    const time = element('time', { datetime: log.time, title: utcText(log.time), 'data-iso': log.time });
    time.textContent = this.utc ? utcText(log.time) : localText(log.time);
    const user = log.user ? filterValue('username', log.user.username) : element('span', { className: 'muted', text: log.additional_fields?.automatic_actor ?? 'system' });
    const resource = element('span', {}, element('span', { className: 'type', text: log.resource_type }), ' ', log.resource_target || '');
    const status = element('span', { className: failed ? 'status failed' : 'status ok', text: String(log.status_code) });
    if (failed) status.setAttribute('aria-label', `failed, status ${log.status_code}`);
    const organization = log.organization ? filterValue('organization', log.organization.name, log.organization.display_name || log.organization.name) : element('span', { className: 'muted', text: 'site-wide' });
    const row = element('tr', { className: `event${failed ? ' failed' : ''}${fresh ? ' fresh' : ''}`, 'data-id': log.id });
    row.append(
      element('td', {}, toggle),
      element('td', { className: 'time' }, time),
      element('td', {}, user),
      element('td', { text: log.action }),
      element('td', {}, resource),
      element('td', {}, status),
      element('td', {}, organization),
      element('td', { className: 'description', text: describe(log) }),
    );
    return row;
  }

  /** Replaces the rows with `logs`. */
  render(logs) {
    this.logs.clear();
    const fragment = document.createDocumentFragment();
    for (const log of logs) fragment.append(this.row(log));
    this.body.replaceChildren(fragment);
  }

  /** Puts `logs` (newest first) above the current rows, marked as new. */
  prepend(logs) {
    const fragment = document.createDocumentFragment();
    for (const log of logs) fragment.append(this.row(log, { fresh: true }));
    this.body.prepend(fragment);
  }

  toggle(button) {
    const row = button.closest('tr');
    const open = button.getAttribute('aria-expanded') !== 'true';
    button.setAttribute('aria-expanded', String(open));
    button.setAttribute('aria-label', open ? 'Hide details' : 'Show details');
    button.textContent = open ? '▾' : '▸';
    let detail = document.getElementById(button.getAttribute('aria-controls'));
    if (open && !detail) {
      detail = element('tr', { className: 'detail', id: button.getAttribute('aria-controls') }, element('td', { colspan: String(COLUMNS) }, detailOf(this.logs.get(row.dataset.id))));
      row.after(detail);
    }
    if (detail) detail.hidden = !open;
  }

  setUtc(utc) {
    this.utc = utc;
    for (const time of this.body.querySelectorAll('time[data-iso]')) {
      time.textContent = utc ? utcText(time.dataset.iso) : localText(time.dataset.iso);
    }
  }
}
