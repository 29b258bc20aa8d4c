// The activity chart: the histogram's buckets as SVG bars, drawn here (no library), and a
// drag across them that selects a time range.

import { durationText, formatNumber, utcText } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
const HEIGHT = 140;
const AXIS = 18;
/** Room above the highest bar for the peak's label. */
const HEADROOM = 16;
/** Drags narrower than this many pixels are clicks: they select the bar under the pointer. */
const CLICK_PIXELS = 3;

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

export class ActivityChart {
  /** `onRange(fromMs, toMs)` runs when the auditor selects a range (to exclusive). */
  constructor({ container, caption, onRange }) {
    Object.assign(this, { container, caption, onRange });
    this.histogram = null;
    this.focused = -1;
    container.addEventListener('keydown', (event) => this.onKey(event));
    this.resizeObserver = new ResizeObserver(() => this.draw());
    this.resizeObserver.observe(container);
  }

  /** Shows a histogram (`{bucket_seconds, buckets, total}`). */
  show(histogram) {
    this.histogram = histogram;
    this.focused = -1;
    this.caption.textContent = histogram.total === 0
      ? 'No matching events'
      : `${formatNumber(histogram.total)} event${histogram.total === 1 ? '' : 's'}, bars of ${durationText(histogram.bucket_seconds)} (UTC)`;
    this.draw();
  }

  /** The buckets from the first to the last, the empty ones included. */
  series() {
    const { bucket_seconds: width, buckets } = this.histogram;
    if (buckets.length === 0) return [];
    const byStart = new Map(buckets.map((bucket) => [bucket.start, bucket.count]));
    const first = buckets[0].start;
    const last = buckets[buckets.length - 1].start;
    const series = [];
    for (let start = first; start <= last; start += width) series.push({ start, count: byStart.get(start) ?? 0 });
    return series;
  }

  draw() {
    if (!this.histogram) return;
    const width = Math.max(this.container.clientWidth, 200);
    const series = this.series();
    const root = svg('svg', { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, class: 'bars' });
    this.container.replaceChildren(root);
    if (series.length === 0) return;
    const bucketMs = this.histogram.bucket_seconds * 1000;
    const fromMs = series[0].start * 1000;
    const toMs = series[series.length - 1].start * 1000 + bucketMs;
    const plotHeight = HEIGHT - AXIS;
    const highest = Math.max(...series.map((bucket) => bucket.count));
    const barWidth = width / series.length;
    series.forEach((bucket, index) => {
      const height = bucket.count === 0 ? 0 : Math.max(1, (bucket.count / highest) * (plotHeight - HEADROOM));
      const bar = svg('rect', {
        x: index * barWidth + 0.5,
        y: plotHeight - height,
        width: Math.max(barWidth - 1, 1),
        height,
        class: 'bar',
        'data-start': bucket.start,
        'data-count': bucket.count,
      });
      const title = svg('title');
      title.textContent = `${formatNumber(bucket.count)} events from ${utcText(new Date(bucket.start * 1000).toISOString())}`;
      bar.append(title);
      root.append(bar);
    });
    const labels = [[0, 'start', fromMs], [width, 'end', toMs]];
    for (const [x, anchor, ms] of labels) {
      const label = svg('text', { x, y: HEIGHT - 4, 'text-anchor': anchor, class: 'axis' });
      label.textContent = utcText(new Date(ms).toISOString()).slice(0, 16);
      root.append(label);
    }
    const peak = svg('text', { x: 4, y: 12, class: 'axis' });
    peak.textContent = `max ${formatNumber(highest)}`;
    root.append(peak);
    const selection = svg('rect', { x: 0, y: 0, width: 0, height: plotHeight, class: 'selection', visibility: 'hidden' });
    root.append(selection);
    this.listen(root, selection, { width, fromMs, toMs, bucketMs });
  }

  /** The keyboard's way in: arrows move between bars, Enter selects the bar's range. */
  onKey(event) {
    const series = this.histogram ? this.series() : [];
    if (series.length === 0) return;
    const targets = {
      ArrowRight: () => (this.focused < 0 ? 0 : this.focused + 1),
      ArrowLeft: () => (this.focused < 0 ? 0 : this.focused - 1),
      Home: () => 0,
      End: () => series.length - 1,
    };
    if (event.key in targets) {
      event.preventDefault();
      this.focused = Math.min(Math.max(targets[event.key](), 0), series.length - 1);
      const bars = this.container.querySelectorAll('rect.bar');
      bars.forEach((bar, index) => bar.classList.toggle('focused', index === this.focused));
      const bucket = series[this.focused];
      this.caption.textContent = `${formatNumber(bucket.count)} events from ${utcText(new Date(bucket.start * 1000).toISOString())}; Enter selects this bar`;
    } else if (event.key === 'Enter' && this.focused >= 0) {
      event.preventDefault();
      const startMs = series[this.focused].start * 1000;
      this.onRange(startMs, startMs + this.histogram.bucket_seconds * 1000);
    }
  }

  listen(root, selection, { width, fromMs, toMs, bucketMs }) {
    const xOf = (event) => Math.min(Math.max(event.clientX - root.getBoundingClientRect().left, 0), width);
    const msAt = (x) => fromMs + (x / width) * (toMs - fromMs);
    let startX = null;
    root.addEventListener('pointerdown', (event) => {
      startX = xOf(event);
      root.setPointerCapture(event.pointerId);
      selection.setAttribute('visibility', 'visible');
      selection.setAttribute('x', startX);
      selection.setAttribute('width', 0);
    });
    root.addEventListener('pointermove', (event) => {
      if (startX === null) return;
      const x = xOf(event);
      selection.setAttribute('x', Math.min(startX, x));
      selection.setAttribute('width', Math.abs(x - startX));
    });
    root.addEventListener('pointerup', (event) => {
      if (startX === null) return;
      const endX = xOf(event);
      const left = Math.min(startX, endX);
      const right = Math.max(startX, endX);
      startX = null;
      selection.setAttribute('visibility', 'hidden');
      if (right - left < CLICK_PIXELS) {
        // A click: the whole bucket under the pointer.
        const bucketStart = fromMs + Math.floor((msAt(left) - fromMs) / bucketMs) * bucketMs;
        this.onRange(bucketStart, bucketStart + bucketMs);
      } else {
        this.onRange(msAt(left), msAt(right));
      }
    });
  }
}
