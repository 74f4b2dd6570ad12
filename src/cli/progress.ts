/** Progress output: a redrawn bar on a TTY, a plain line every few seconds otherwise. */
export interface ProgressState {
  label: string;
  done: number;
  total?: number;
  /** Of `done`, how many were copied (sync), shown with `bytes` as what they weigh. */
  copied?: number;
  bytes?: number;
  failed?: number;
}

// Characters that would rewrite a terminal or a log when printed raw: controls (ANSI escapes,
// line breaks), Unicode line separators and bidi overrides.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/;
const EVERY_UNPRINTABLE = new RegExp(UNPRINTABLE.source, 'g');

/** A name other software wrote, safe to print on one line: as it is, or quoted with such characters escaped (`"a\u000ab"`). */
export function displayName(name: string): string {
  if (!UNPRINTABLE.test(name)) return name;
  return `"${name.replace(/["\\]/g, '\\$&').replace(EVERY_UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export class ProgressReporter {
  private readonly started = Date.now();
  private lastDraw = Date.now();
  /** The counts of the last line printed, so the closing line does not repeat it. */
  private lastPrinted: string | undefined;
  private readonly stream: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean };
  private readonly enabled: boolean;

  constructor(stream: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean } = process.stderr, enabled = true) {
    this.stream = stream;
    this.enabled = enabled;
  }

  private line(state: ProgressState): string {
    const seconds = Math.max((Date.now() - this.started) / 1000, 0.001);
    const parts = [`${state.label} ${state.done}${state.total !== undefined ? `/${state.total}` : ''} files`];
    if (state.copied !== undefined) parts.push(`copied ${state.copied} (${formatBytes(state.bytes ?? 0)}, ${formatBytes((state.bytes ?? 0) / seconds)}/s)`);
    else if (state.bytes !== undefined) parts.push(`${formatBytes(state.bytes)}`, `${formatBytes(state.bytes / seconds)}/s`);
    parts.push(`${(state.done / seconds).toFixed(1)} files/s`);
    if (state.failed) parts.push(`${state.failed} failed`);
    return parts.join('  ');
  }

  update(state: ProgressState, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    const tty = !!this.stream.isTTY;
    if (!force && now - this.lastDraw < (tty ? 100 : 2000)) return;
    const counts = JSON.stringify([state.done, state.total, state.copied, state.bytes, state.failed]);
    // A log (not a TTY) gets a new line only when something changed since the last one.
    if (!tty && force && counts === this.lastPrinted) return;
    this.lastDraw = now;
    this.lastPrinted = counts;
    if (tty) {
      const width = 24;
      const ratio = state.total ? Math.min(1, state.done / state.total) : 0;
      const bar = state.total ? `[${'#'.repeat(Math.round(ratio * width)).padEnd(width, '.')}] ` : '';
      this.stream.write(`\r\x1b[K${bar}${this.line(state)}`);
    } else {
      this.stream.write(`${this.line(state)}\n`);
    }
  }

  finish(state: ProgressState): void {
    if (!this.enabled) return;
    this.update(state, true);
    if (this.stream.isTTY) this.stream.write('\n');
  }
}
