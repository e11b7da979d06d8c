// An SVG of one layer's attention pattern: which keys (columns) each query (rows) may read,
// over the first `n` positions, one cell per `cell`×`cell` block of positions (filled when the
// block holds an allowed pair). The rules are DESIGN.md §1's, causal: every head of a layer
// shares its layer's pattern.

/** Whether query i may read key j under mode/L (causal). */
export function allowed(mode, L, i, j) {
  if (j > i) return false;
  if (mode === 'local') return i - j < L;
  if (mode === 'strided') return (i - j) % L === 0;
  return true;
}

export function layoutSvg(mode, L, { n = 512, cell = 8, px = 4, title = `${mode} L=${L}` } = {}) {
  const b = Math.ceil(n / cell);
  const size = b * px;
  const rects = [];
  for (let qb = 0; qb < b; qb++) {
    for (let kb = 0; kb <= qb; kb++) {
      let any = false;
      for (let i = qb * cell; i < Math.min(n, (qb + 1) * cell) && !any; i++) {
        for (let j = kb * cell; j < Math.min(n, (kb + 1) * cell) && !any; j++) any = allowed(mode, L, i, j);
      }
      if (any) rects.push(`<rect x="${kb * px}" y="${qb * px}" width="${px}" height="${px}"/>`);
    }
  }
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size + 2}" height="${size + 20}" viewBox="-1 -19 ${size + 2} ${size + 20}" font-family="sans-serif" font-size="11">` +
    `<text x="0" y="-6">${title}</text>` +
    `<rect x="0" y="0" width="${size}" height="${size}" fill="#f4f4f4" stroke="#999" stroke-width="0.5"/>` +
    `<g fill="#1f6fb4">${rects.join('')}</g></svg>`
  );
}
