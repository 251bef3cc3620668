// Benchmark helper: a Markdown table (readable in a terminal, pasteable into BENCHMARKS.md) and number formats.

export interface Column<T> {
  title: string;
  align?: 'left' | 'right';
  value(row: T): string;
}

export function markdownTable<T>(columns: readonly Column<T>[], rows: readonly T[]): string {
  const cells = rows.map((row) => columns.map((c) => c.value(row)));
  const widths = columns.map((c, i) => Math.max(c.title.length, 3, ...cells.map((r) => r[i]!.length)));
  const pad = (text: string, i: number): string => (columns[i]!.align === 'left' ? text.padEnd(widths[i]!) : text.padStart(widths[i]!));
  const line = (values: string[]): string => `| ${values.map(pad).join(' | ')} |`;
  const rule = `|${columns.map((c, i) => (c.align === 'left' ? `:${'-'.repeat(widths[i]! + 1)}` : `${'-'.repeat(widths[i]! + 1)}:`)).join('|')}|`;
  return [line(columns.map((c) => c.title)), rule, ...cells.map(line)].join('\n');
}

/** 12345.6 → "12,346"; NaN → "–". */
export function integer(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
}

export function fixed(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '–';
}

export function percent(ratio: number): string {
  return Number.isFinite(ratio) ? `${(ratio * 100).toFixed(0)}%` : '–';
}

export function mebibytes(kib: number): string {
  return Number.isFinite(kib) ? (kib / 1024).toFixed(0) : '–';
}

export function bytes(n: number): string {
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} B`;
}
