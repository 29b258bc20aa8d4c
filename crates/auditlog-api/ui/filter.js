// The filter bar: Coder's language typed freely, Coder's presets in a menu, completion of
// keys and values from /api/v2/audit/suggest, and the API's validations shown at the part
// of the filter they name.

import { fetchSuggestions } from './api.js';

/** Coder's preset filters, as its audit page offers them. */
export const PRESETS = [
  { name: 'Created workspaces', query: 'resource_type:workspace action:create' },
  { name: 'Added templates', query: 'resource_type:template action:create' },
  { name: 'Deleted users', query: 'resource_type:user action:delete' },
  { name: 'Builds by users', query: 'resource_type:workspace_build action:start build_reason:initiator' },
  { name: 'User logins', query: 'resource_type:api_key action:login' },
];

/** Keys whose values the server can suggest; the others (ids, dates) are typed. */
const SUGGESTED_KEYS = new Set(['resource_type', 'action', 'build_reason', 'organization', 'username', 'email', 'resource_target']);

const SUGGEST_DELAY_MS = 120;

/** The filter's elements: `{start, end, text}` for each space-separated part outside quotes. */
export function tokens(query) {
  const parts = [];
  let start = -1;
  let quoted = false;
  for (let index = 0; index <= query.length; index += 1) {
    const character = query[index];
    const boundary = index === query.length || (character === ' ' && !quoted);
    if (boundary) {
      if (start >= 0) parts.push({ start, end: index, text: query.slice(start, index) });
      start = -1;
      continue;
    }
    if (start < 0) start = index;
    if (character === '"') quoted = !quoted;
  }
  return parts;
}

/** The key of an element (lowercased, quotes trimmed), or '' for a bare word. */
export function keyOf(text) {
  const colon = text.indexOf(':');
  return colon < 0 ? '' : text.slice(0, colon).replaceAll('"', '').toLowerCase();
}

/** A value as the filter writes it: quoted when it holds a space or a colon. */
export function quoteValue(value) {
  return /[\s:]/.test(value) ? `"${value}"` : value;
}

/** `query` with `key:value` in place of any element of that key (keys may appear once). */
export function withKey(query, key, value) {
  const kept = tokens(query)
    .filter((part) => keyOf(part.text) !== key && !(key === 'resource_type' && keyOf(part.text) === ''))
    .map((part) => part.text);
  if (value !== '') kept.push(`${key}:${quoteValue(value)}`);
  return kept.join(' ');
}

/** The elements of `query` a validation names: its key's elements, or the element quoted
 * in a tokenizer error's text (`Query element "username:" ...`). */
function namedParts(query, validation) {
  const parts = tokens(query);
  if (validation.field && validation.field !== 'q') {
    const bare = validation.field === 'resource_type';
    return parts.filter((part) => keyOf(part.text) === validation.field.toLowerCase() || (bare && keyOf(part.text) === ''));
  }
  const quoted = /element "(.*)"/.exec(validation.detail ?? '');
  if (!quoted) return [];
  return parts.filter((part) => part.text.toLowerCase() === quoted[1]);
}

export class FilterBar {
  /** `onApply(query)` runs when the auditor applies a filter. */
  constructor({ form, input, suggestions, presetsButton, presetsMenu, errors, echo, onApply }) {
    Object.assign(this, { form, input, suggestions, presetsButton, presetsMenu, errors, echo, onApply });
    this.options = [];
    this.active = -1;
    this.timer = 0;
    this.abort = null;
    this.context = null;
    this.buildPresets();
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.closeSuggestions();
      this.onApply(input.value.trim());
    });
    input.addEventListener('input', () => this.scheduleSuggestions());
    input.addEventListener('focus', () => this.scheduleSuggestions());
    input.addEventListener('keydown', (event) => this.onKey(event));
    input.addEventListener('blur', () => setTimeout(() => this.closeSuggestions(), 150));
    document.addEventListener('keydown', (event) => {
      const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement || event.target instanceof HTMLTextAreaElement;
      if (event.key === '/' && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
        event.preventDefault();
        input.focus();
        input.select();
      }
    });
  }

  set value(query) {
    this.input.value = query;
  }

  get value() {
    return this.input.value;
  }

  buildPresets() {
    for (const preset of PRESETS) {
      const item = document.createElement('li');
      item.setAttribute('role', 'menuitem');
      item.tabIndex = -1;
      item.textContent = preset.name;
      item.dataset.query = preset.query;
      item.title = preset.query;
      item.addEventListener('click', () => this.choosePreset(preset.query));
      this.presetsMenu.append(item);
    }
    this.presetsButton.addEventListener('click', () => this.toggleMenu(this.presetsMenu.hidden));
    this.presetsButton.addEventListener('keydown', (event) => {
      if (event.key === 'ArrowDown') {
        event.preventDefault();
        this.toggleMenu(true);
      }
    });
    this.presetsMenu.addEventListener('keydown', (event) => {
      const items = [...this.presetsMenu.children];
      const index = items.indexOf(document.activeElement);
      if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        event.preventDefault();
        const step = event.key === 'ArrowDown' ? 1 : -1;
        items[(index + step + items.length) % items.length].focus();
      } else if (event.key === 'Home' || event.key === 'End') {
        event.preventDefault();
        items[event.key === 'Home' ? 0 : items.length - 1].focus();
      } else if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        if (index >= 0) this.choosePreset(items[index].dataset.query);
      } else if (event.key === 'Escape' || event.key === 'Tab') {
        this.toggleMenu(false);
        this.presetsButton.focus();
      }
    });
    document.addEventListener('click', (event) => {
      if (!this.presetsMenu.hidden && !this.presetsMenu.contains(event.target) && event.target !== this.presetsButton) this.toggleMenu(false);
    });
  }

  toggleMenu(open) {
    this.presetsMenu.hidden = !open;
    this.presetsButton.setAttribute('aria-expanded', String(open));
    if (open) this.presetsMenu.firstElementChild?.focus();
  }

  choosePreset(query) {
    this.toggleMenu(false);
    this.input.value = query;
    this.onApply(query);
  }

  /** The element under the caret: what completion replaces. */
  caretContext() {
    const caret = this.input.selectionStart ?? this.input.value.length;
    const query = this.input.value;
    const part = tokens(query).find((candidate) => candidate.start <= caret && caret <= candidate.end) ?? { start: caret, end: caret, text: '' };
    const colon = part.text.indexOf(':');
    if (colon < 0) return { ...part, key: '', prefix: part.text.replaceAll('"', '') };
    return { ...part, key: keyOf(part.text), prefix: part.text.slice(colon + 1).replaceAll('"', '') };
  }

  scheduleSuggestions() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.suggest(), SUGGEST_DELAY_MS);
  }

  async suggest() {
    const context = this.caretContext();
    if (context.key !== '' && !SUGGESTED_KEYS.has(context.key)) {
      this.closeSuggestions();
      return;
    }
    this.abort?.abort();
    this.abort = new AbortController();
    let values;
    try {
      values = await fetchSuggestions(context.key, context.prefix, { signal: this.abort.signal });
    } catch {
      return;
    }
    if (document.activeElement !== this.input) return;
    this.context = context;
    this.showSuggestions(values.filter((value) => value !== context.prefix || context.key === ''));
  }

  showSuggestions(values) {
    this.suggestions.replaceChildren();
    this.options = values;
    this.active = -1;
    values.forEach((value, index) => {
      const option = document.createElement('li');
      option.id = `suggestion-${index}`;
      option.setAttribute('role', 'option');
      option.setAttribute('aria-selected', 'false');
      option.textContent = this.context.key === '' ? `${value}:` : value;
      option.addEventListener('mousedown', (event) => {
        event.preventDefault();
        this.accept(index);
      });
      this.suggestions.append(option);
    });
    const open = values.length > 0;
    this.suggestions.hidden = !open;
    this.input.setAttribute('aria-expanded', String(open));
    this.input.removeAttribute('aria-activedescendant');
  }

  closeSuggestions() {
    this.suggestions.hidden = true;
    this.options = [];
    this.active = -1;
    this.input.setAttribute('aria-expanded', 'false');
    this.input.removeAttribute('aria-activedescendant');
  }

  highlight(index) {
    const items = [...this.suggestions.children];
    items.forEach((item, position) => item.setAttribute('aria-selected', String(position === index)));
    this.active = index;
    if (index >= 0) {
      this.input.setAttribute('aria-activedescendant', items[index].id);
      items[index].scrollIntoView({ block: 'nearest' });
    }
  }

  accept(index) {
    const value = this.options[index];
    // The element under the caret now, not when the list was fetched: typing goes on while
    // a newer list is on its way, and replacing the older, shorter element would keep the
    // characters typed since ('us' accepted as 'username:s').
    const { start, end } = this.caretContext();
    const { key } = this.context;
    const query = this.input.value;
    const replacement = key === '' ? `${value}:` : `${key}:${quoteValue(value)} `;
    const next = query.slice(0, start) + replacement + query.slice(end).replace(/^ /, '');
    this.input.value = next;
    const caret = start + replacement.length;
    this.input.setSelectionRange(caret, caret);
    this.closeSuggestions();
    this.input.focus();
    this.scheduleSuggestions();
  }

  onKey(event) {
    const open = !this.suggestions.hidden && this.options.length > 0;
    if (event.key === 'ArrowDown' && open) {
      event.preventDefault();
      this.highlight((this.active + 1) % this.options.length);
    } else if (event.key === 'ArrowUp' && open) {
      event.preventDefault();
      this.highlight((this.active - 1 + this.options.length) % this.options.length);
    } else if ((event.key === 'Enter' || event.key === 'Tab') && open && this.active >= 0) {
      event.preventDefault();
      this.accept(this.active);
    } else if (event.key === 'Escape' && open) {
      event.preventDefault();
      this.closeSuggestions();
    }
  }

  /** Shows the API's validations, and marks the filter's elements they name. */
  showValidations(query, validations) {
    this.errors.replaceChildren();
    this.echo.replaceChildren();
    this.input.removeAttribute('aria-invalid');
    if (validations.length === 0) return;
    this.input.setAttribute('aria-invalid', 'true');
    const marked = new Set();
    for (const validation of validations) {
      const item = document.createElement('li');
      const named = namedParts(query, validation);
      named.forEach((part) => marked.add(part.start));
      const where = named.map((part) => part.text).join(' ');
      if (where) {
        const code = document.createElement('code');
        code.textContent = where;
        item.append(code, ' ');
      }
      item.append(validation.detail);
      this.errors.append(item);
    }
    let position = 0;
    for (const part of tokens(query)) {
      this.echo.append(query.slice(position, part.start));
      const span = document.createElement('span');
      span.textContent = part.text;
      if (marked.has(part.start)) span.className = 'invalid';
      this.echo.append(span);
      position = part.end;
    }
  }
}
