// Hand-written SVG charts for bench/REPORT.md (no chart library): horizontal log-scale bars
// (implementations × modes) and log-log lines (time vs nCtx). Pure functions returning text.

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

function logTicks(lo, hi) {
  const ticks = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) { const t = m * 10 ** e; if (t >= lo * 0.999 && t <= hi * 1.001) ticks.push(t); }
  }
  return ticks;
}
const fmt = (v) => (v >= 1000 ? `${+(v / 1000).toPrecision(3)}k` : `${+v.toPrecision(3)}`);

/**
 * groups: [{ name, bars: [{ label, value, highlight }] }] → horizontal bars, log x axis.
 * value <= 0 or null draws "n/a".
 */
export function barChart({ title, unit, groups }) {
  const labelW = 250, plotW = 520, barH = 14, gap = 4, groupGap = 22, top = 44, right = 70;
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...values))), hi = 10 ** Math.ceil(Math.log10(Math.max(...values)));
  const x = (v) => labelW + (plotW * Math.log10(v / lo)) / Math.log10(hi / lo);
  let y = top;
  const parts = [];
  for (const g of groups) {
    parts.push(`<text x="8" y="${y + 11}" font-weight="bold">${esc(g.name)}</text>`);
    y += 18;
    for (const b of g.bars) {
      parts.push(`<text x="${labelW - 6}" y="${y + barH - 3}" text-anchor="end">${esc(b.label)}</text>`);
      if (b.value > 0) {
        parts.push(`<rect x="${labelW}" y="${y}" width="${Math.max(1, x(b.value) - labelW).toFixed(1)}" height="${barH}" fill="${b.highlight ? '#d62728' : '#1f77b4'}"/>`);
        parts.push(`<text x="${(x(b.value) + 4).toFixed(1)}" y="${y + barH - 3}">${fmt(b.value)}</text>`);
      } else parts.push(`<text x="${labelW + 4}" y="${y + barH - 3}" fill="#888">n/a</text>`);
      y += barH + gap;
    }
    y += groupGap - gap;
  }
  const axis = logTicks(lo, hi).map((t) => `<line x1="${x(t).toFixed(1)}" y1="${top - 6}" x2="${x(t).toFixed(1)}" y2="${y - groupGap + 4}" stroke="#ddd"/><text x="${x(t).toFixed(1)}" y="${top - 10}" text-anchor="middle" fill="#555">${fmt(t)}</text>`);
  const w = labelW + plotW + right, h = y + 8;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="8" y="16" font-size="13" font-weight="bold">${esc(title)}</text>
<text x="${labelW + plotW}" y="16" text-anchor="end" fill="#555">${esc(unit)} (log scale)</text>
${axis.join('\n')}
${parts.join('\n')}
</svg>
`;
}

/** series: [{ name, points: [[x, y]], dashed }] on log-log axes. */
export function lineChart({ title, xLabel, yLabel, series }) {
  const left = 64, top = 36, plotW = 520, plotH = 320, legendW = 210, bottom = 44;
  const xs = series.flatMap((s) => s.points.map((p) => p[0])), ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xlo = Math.min(...xs), xhi = Math.max(...xs);
  const ylo = 10 ** Math.floor(Math.log10(Math.min(...ys))), yhi = 10 ** Math.ceil(Math.log10(Math.max(...ys)));
  const X = (v) => left + (plotW * Math.log(v / xlo)) / Math.log(xhi / xlo);
  const Y = (v) => top + plotH - (plotH * Math.log(v / ylo)) / Math.log(yhi / ylo);
  const grid = [];
  for (const t of logTicks(ylo, yhi)) grid.push(`<line x1="${left}" y1="${Y(t).toFixed(1)}" x2="${left + plotW}" y2="${Y(t).toFixed(1)}" stroke="#ddd"/><text x="${left - 6}" y="${(Y(t) + 4).toFixed(1)}" text-anchor="end" fill="#555">${fmt(t)}</text>`);
  for (const t of [...new Set(xs)].sort((a, b) => a - b)) grid.push(`<line x1="${X(t).toFixed(1)}" y1="${top}" x2="${X(t).toFixed(1)}" y2="${top + plotH}" stroke="#eee"/><text x="${X(t).toFixed(1)}" y="${top + plotH + 16}" text-anchor="middle" fill="#555">${fmt(t)}</text>`);
  const lines = series.map((s, i) => {
    const c = s.color ?? PALETTE[i % PALETTE.length];
    const pts = s.points.map(([a, b]) => `${X(a).toFixed(1)},${Y(b).toFixed(1)}`).join(' ');
    const dots = s.points.map(([a, b]) => `<circle cx="${X(a).toFixed(1)}" cy="${Y(b).toFixed(1)}" r="3" fill="${c}"/>`).join('');
    const ly = top + 8 + i * 18;
    return `<polyline points="${pts}" fill="none" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>${dots}
<line x1="${left + plotW + 16}" y1="${ly}" x2="${left + plotW + 40}" y2="${ly}" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/><text x="${left + plotW + 46}" y="${ly + 4}">${esc(s.name)}</text>`;
  });
  const w = left + plotW + legendW, h = top + plotH + bottom;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="8" y="18" font-size="13" font-weight="bold">${esc(title)}</text>
${grid.join('\n')}
<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>
<text x="${left + plotW / 2}" y="${h - 8}" text-anchor="middle">${esc(xLabel)}</text>
<text x="14" y="${top + plotH / 2}" text-anchor="middle" transform="rotate(-90 14 ${top + plotH / 2})">${esc(yLabel)}</text>
${lines.join('\n')}
</svg>
`;
}
