// Renders benchmark results: a plain-text table per scenario for the terminal, and one
// self-contained HTML page with an SVG bar chart per scenario (contenders side by side,
// the median as the bar, the spread as an error bar, the ratio to the peer as a label).
import type { ScenarioResult, Summary } from './scenario.js';

const fmt = (n: number): string =>
  !Number.isFinite(n) ? '-' : Math.abs(n) >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2);

/** The metrics a group has values for (scenarios with mixed groups report different ones). */
function metricsOf(result: ScenarioResult, group: ScenarioResult['groups'][number]) {
  return result.metrics.filter((m) => group.rows.some((r) => r.values[m.name] !== undefined));
}

export function renderText(result: ScenarioResult): string[] {
  const lines = [`== ${result.title} [${result.id}]`, `   settings: ${Object.entries(result.settings).map(([k, v]) => `${k}=${v}`).join('; ')}`];
  for (const group of result.groups) {
    if (group.name) lines.push(`   -- ${group.name}`);
    const metrics = metricsOf(result, group);
    const base = result.baseline ? group.rows.find((r) => r.contender === result.baseline)?.values[result.primary]?.median : undefined;
    const header = ['contender', ...metrics.map((m) => `${m.name} (${m.unit})`), ...(base !== undefined ? [`vs ${result.baseline}`] : [])];
    const rows = group.rows.map((row) => [
      row.contender,
      ...metrics.map((m) => {
        const s: Summary | undefined = row.values[m.name];
        // One sample (e.g. a p99 over pooled trials) has no spread to show.
        return s === undefined ? '-' : s.samples.length > 1 ? `${fmt(s.median)} [${fmt(s.min)}–${fmt(s.max)}]` : fmt(s.median);
      }),
      ...(base !== undefined ? [`${((row.values[result.primary]?.median ?? NaN) / base).toFixed(2)}x`] : []),
    ]);
    const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => r[i]!.length)));
    for (const r of [header, ...rows]) lines.push(`   ${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}`);
  }
  for (const bar of result.bars) lines.push(`   ${bar.pass ? 'PASS' : 'MISS'}  ${bar.label}: ${bar.detail}`);
  for (const note of result.notes ?? []) lines.push(`   note: ${note}`);
  return lines;
}

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function chart(result: ScenarioResult, group: ScenarioResult['groups'][number]): string {
  // The scenario's primary metric where the group has it, else the group's first one.
  const available = metricsOf(result, group);
  const metric = available.find((m) => m.name === result.primary) ?? available[0];
  if (metric === undefined) return '';
  const rows = group.rows.filter((r) => r.values[metric.name] !== undefined);
  const max = Math.max(...rows.map((r) => r.values[metric.name]!.max), 1e-9);
  const base = result.baseline ? group.rows.find((r) => r.contender === result.baseline)?.values[metric.name]?.median : undefined;
  const title = `<text x="0" y="12" font-weight="bold">${escape(metric.name)} (${escape(metric.unit)}, ${metric.higherIsBetter ? 'higher' : 'lower'} is better)</text>`;
  const rowHeight = 28;
  const labelWidth = 190;
  const plotWidth = 520;
  const height = rows.length * rowHeight + 40;
  const x = (v: number) => labelWidth + (v / max) * plotWidth;
  const parts = rows.map((row, i) => {
    const s = row.values[metric.name]!;
    const y = 22 + i * rowHeight;
    const ratio = base !== undefined ? ` (${(s.median / base).toFixed(2)}x)` : '';
    return [
      `<text x="${labelWidth - 8}" y="${y + 15}" text-anchor="end">${escape(row.contender)}</text>`,
      `<rect x="${labelWidth}" y="${y + 3}" width="${Math.max(1, x(s.median) - labelWidth)}" height="16" fill="${row.contender === result.baseline ? '#9aa5b1' : '#3b82f6'}"/>`,
      `<line x1="${x(s.min)}" x2="${x(s.max)}" y1="${y + 11}" y2="${y + 11}" stroke="#111" stroke-width="1.5"/>`,
      `<line x1="${x(s.min)}" x2="${x(s.min)}" y1="${y + 6}" y2="${y + 16}" stroke="#111"/>`,
      `<line x1="${x(s.max)}" x2="${x(s.max)}" y1="${y + 6}" y2="${y + 16}" stroke="#111"/>`,
      `<text x="${x(s.max) + 6}" y="${y + 15}">${escape(fmt(s.median))} ${escape(metric.unit)}${ratio}</text>`,
    ].join('');
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${labelWidth + plotWidth + 220}" height="${height}" font-family="sans-serif" font-size="12">${title}${parts.join('')}</svg>`;
}

export function renderHtml(results: readonly ScenarioResult[], machine: string, date: string): string {
  const sections = results.map((result) => {
    const groups = result.groups
      .map((g) => `${g.name ? `<h3>${escape(g.name)}</h3>` : ''}${chart(result, g)}`)
      .join('');
    const bars = result.bars.map((b) => `<li class="${b.pass ? 'pass' : 'miss'}">${b.pass ? 'PASS' : 'MISS'} — ${escape(b.label)}: ${escape(b.detail)}</li>`).join('');
    const notes = (result.notes ?? []).map((n) => `<li>${escape(n)}</li>`).join('');
    return `<section><h2>${escape(result.title)}</h2><p class="settings">${escape(Object.entries(result.settings).map(([k, v]) => `${k}: ${v}`).join(' · '))}</p>
<p class="settings">bars: median of the interleaved runs (${escape(result.primary)}); whiskers: min–max; ratios against ${escape(result.baseline ?? 'none')}</p>
${groups}<ul>${bars}</ul>${notes ? `<ul class="notes">${notes}</ul>` : ''}<pre>${escape(renderText(result).join('\n'))}</pre></section>`;
  });
  return `<!doctype html><html><head><meta charset="utf-8"><title>anchorpool benchmarks</title>
<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#111}.settings{color:#555;font-size:13px}.pass{color:#15803d}.miss{color:#b91c1c}pre{background:#f5f5f5;padding:8px;font-size:12px;overflow-x:auto}section{margin-bottom:3em}</style>
</head><body><h1>anchorpool benchmarks</h1><p>${escape(machine)} — ${escape(date)}. Every figure is from this one run; ratios compare contenders measured in the same run. Absolute numbers from another machine are not comparable.</p>
${sections.join('\n')}</body></html>\n`;
}
