// The example's dense layers: Y[n, m] (+)= X[n, k] · W[k, m] with W pre-packed in panels of
// 8 columns (Wp[m/8][k][8], see packPanels in ../dense.mjs), so that each k step of a
// register tile reads one contiguous 32-byte row of its panel. Register tile: 4 rows × 8
// columns = 8 f32x4 accumulators (+ 2 panel loads + 1 splat: 11 of x86's 16 xmm registers);
// 1 row × 8 columns for the rows left over and for decode (n = 1).
// Buffers are raw pointers into this module's memory; the caller guarantees m % 8 == 0.

// @ts-ignore: decorator
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Rows of X walked per pass over the panels: 32 rows · 704 f32 = 88 KiB stay in L2. */
const ROW_BLOCK: i32 = 32;

/**
 * Y = X · W (acc = 0) or Y += X · W (acc = 1).
 * x: [n, k] row-major; wp: [m/8, k, 8] packed panels; y: [n, m] row-major.
 */
export function matmul(x: usize, wp: usize, y: usize, n: i32, k: i32, m: i32, acc: i32): void {
  const panels = m >> 3;
  const xs = <usize>k << 2; // bytes per X row
  const ys = <usize>m << 2; // bytes per Y row
  const ps = <usize>k << 5; // bytes per panel: k · 8 f32
  for (let r0 = 0; r0 < n; r0 += ROW_BLOCK) {
    const r1 = min(n, r0 + ROW_BLOCK);
    for (let p = 0; p < panels; p++) {
      const w0 = wp + <usize>p * ps;
      let r = r0;
      for (; r + 4 <= r1; r += 4) {
        const xr = x + <usize>r * xs;
        const yr = y + <usize>r * ys + (<usize>p << 5);
        // acc{row}{half}: rows r..r+3, columns 8p..8p+3 (a) and 8p+4..8p+7 (b)
        let a0 = f32x4.splat(0), b0 = f32x4.splat(0), a1 = f32x4.splat(0), b1 = f32x4.splat(0);
        let a2 = f32x4.splat(0), b2 = f32x4.splat(0), a3 = f32x4.splat(0), b3 = f32x4.splat(0);
        let wk = w0;
        let xk = xr;
        for (let i = 0; i < k; i++) {
          // acc += X[r.., i] · Wp[p, i, 0..7]
          const wa = v128.load(wk);
          const wb = v128.load(wk, 16);
          let s = v128.load32_splat(xk);
          a0 = madd(s, wa, a0); b0 = madd(s, wb, b0);
          s = v128.load32_splat(xk + xs);
          a1 = madd(s, wa, a1); b1 = madd(s, wb, b1);
          s = v128.load32_splat(xk + 2 * xs);
          a2 = madd(s, wa, a2); b2 = madd(s, wb, b2);
          s = v128.load32_splat(xk + 3 * xs);
          a3 = madd(s, wa, a3); b3 = madd(s, wb, b3);
          wk += 32;
          xk += 4;
        }
        if (acc) {
          a0 = f32x4.add(a0, v128.load(yr)); b0 = f32x4.add(b0, v128.load(yr, 16));
          a1 = f32x4.add(a1, v128.load(yr + ys)); b1 = f32x4.add(b1, v128.load(yr + ys, 16));
          a2 = f32x4.add(a2, v128.load(yr + 2 * ys)); b2 = f32x4.add(b2, v128.load(yr + 2 * ys, 16));
          a3 = f32x4.add(a3, v128.load(yr + 3 * ys)); b3 = f32x4.add(b3, v128.load(yr + 3 * ys, 16));
        }
        v128.store(yr, a0); v128.store(yr, b0, 16);
        v128.store(yr + ys, a1); v128.store(yr + ys, b1, 16);
        v128.store(yr + 2 * ys, a2); v128.store(yr + 2 * ys, b2, 16);
        v128.store(yr + 3 * ys, a3); v128.store(yr + 3 * ys, b3, 16);
      }
      for (; r < r1; r++) rowPanel(x + <usize>r * xs, w0, y + <usize>r * ys + (<usize>p << 5), k, acc);
    }
  }
}

/** One row × one panel: two accumulator pairs over even and odd k, so the adds overlap. */
// @ts-ignore: decorator
@inline function rowPanel(xr: usize, w0: usize, yr: usize, k: i32, acc: i32): void {
  let a0 = f32x4.splat(0), b0 = f32x4.splat(0), a1 = f32x4.splat(0), b1 = f32x4.splat(0);
  let wk = w0;
  let xk = xr;
  let i = 0;
  for (; i + 2 <= k; i += 2) {
    const s0 = v128.load32_splat(xk);
    const s1 = v128.load32_splat(xk, 4);
    a0 = madd(s0, v128.load(wk), a0); b0 = madd(s0, v128.load(wk, 16), b0);
    a1 = madd(s1, v128.load(wk, 32), a1); b1 = madd(s1, v128.load(wk, 48), b1);
    wk += 64;
    xk += 8;
  }
  if (i < k) {
    const s0 = v128.load32_splat(xk);
    a0 = madd(s0, v128.load(wk), a0); b0 = madd(s0, v128.load(wk, 16), b0);
  }
  a0 = f32x4.add(a0, a1);
  b0 = f32x4.add(b0, b1);
  if (acc) {
    a0 = f32x4.add(a0, v128.load(yr));
    b0 = f32x4.add(b0, v128.load(yr, 16));
  }
  v128.store(yr, a0);
  v128.store(yr, b0, 16);
}
