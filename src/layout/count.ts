// Closed-form counts of the built-in layouts: allowed (query, key) pairs and visited block
// pairs of one sequence of nQ queries and nK keys, in O(1) whatever the length, so that a plan
// never walks nCtx² / blockSize² blocks. Exact integers (bigint): a sequence of 2^30 tokens
// has ~2^59 pairs, past the 2^53 that a double holds exactly; callers convert the totals once.

const big = BigInt;
const max = (a: bigint, b: bigint) => (a > b ? a : b);
const min = (a: bigint, b: bigint) => (a < b ? a : b);
const clamp = (x: bigint, lo: bigint, hi: bigint) => min(max(x, lo), hi);

/** Σ_{x=a}^{b} clamp(x, 0, m) (m >= 0); 0 when b < a. */
export function sumClamp(a: bigint, b: bigint, m: bigint): bigint {
  if (b < a) return 0n;
  // x in [max(a, 1), min(b, m)] contributes x; x in [max(a, m + 1), b] contributes m.
  const p = max(a, 1n);
  const q = min(b, m);
  const ramp = q >= p ? ((p + q) * (q - p + 1n)) / 2n : 0n;
  const flat = b >= max(a, m + 1n) ? m * (b - max(a, m + 1n) + 1n) : 0n;
  return ramp + flat;
}

/**
 * #{(i, j) : 0 <= i < nQ, 0 <= j < nK, lo <= j - i <= hi}: the pairs of a band, and with
 * block indices and block offsets, the blocks a band layout visits. lo may be -Infinity,
 * hi Infinity.
 */
export function bandCount(nQ: number, nK: number, lo: number, hi: number): bigint {
  if (nQ <= 0 || nK <= 0 || lo > hi) return 0n;
  const Q = big(nQ);
  const K = big(nK);
  // F(c) = #{j - i <= c} = Σ_{i<nQ} clamp(i + c + 1, 0, nK)
  const F = (c: number) => (c === Infinity ? Q * K : c === -Infinity ? 0n : sumClamp(big(c) + 1n, big(c) + Q, K));
  return F(hi) - F(lo === -Infinity ? -Infinity : lo - 1);
}

/** Block offsets kb - qb that a band [lo, hi] on tokens visits, with blocks of bs: [oLo, oHi]. */
export function bandBlockOffsets(bs: number, lo: number, hi: number): [number, number] {
  // A block at offset o holds j - i in [o·bs - (bs - 1), o·bs + (bs - 1)].
  const oLo = lo === -Infinity ? -Infinity : Math.ceil((lo - bs + 1) / bs);
  const oHi = hi === Infinity ? Infinity : Math.floor((hi + bs - 1) / bs);
  return [oLo, oHi];
}

/** Offsets whose blocks lie wholly inside the band (no token mask): [fLo, fHi], possibly empty. */
export function bandFullOffsets(bs: number, lo: number, hi: number): [number, number] {
  const fLo = lo === -Infinity ? -Infinity : Math.ceil((lo + bs - 1) / bs);
  const fHi = hi === Infinity ? Infinity : Math.floor((hi - bs + 1) / bs);
  return [fLo, fHi];
}

/**
 * OpenAI's 'fixed' pattern on blocks: query block qb (window w = floor(qb / s)) visits key
 * block kb when kb is in the same window of s blocks, or kb mod s is one of this head's
 * summary columns [s0, s0 + vs); causal: only kb <= qb.
 */
export interface FixedShape {
  /** Stride in blocks (localAttnCtx / blockSize). */
  s: number;
  /** First summary column of this head's pattern. */
  s0: number;
  /** Summary columns per window (vertsize). */
  vs: number;
  causal: boolean;
}

/** #{(qb, kb) : qb < A, kb < B, fixed pattern visits (qb, kb)}, in O(1). */
export function fixedBlockCount(f: FixedShape, A: number, B: number): bigint {
  if (A <= 0 || B <= 0) return 0n;
  const s = big(f.s);
  const vs = big(f.vs);
  const s0 = big(f.s0);
  const a = big(A);
  const b = big(B);
  const WQ = a / s;
  const rQ = a % s;
  const WK = b / s;
  const rK = b % s;
  // summary columns below r inside one window, and in [0, n)
  const sr = (r: bigint) => clamp(r - s0, 0n, vs);
  const cntS = (n: bigint) => (n / s) * vs + sr(n % s);
  const summaryBelowB = cntS(b);
  // Keys visited by a query row of window w (position p in the window, n rows): windows before
  // WK lie wholly below B, window WK holds its first rK blocks below B, later ones none.
  let window: (w: bigint, n: bigint) => bigint;
  let fullRange: (w0: bigint, w1: bigint) => bigint; // Σ of window(w, s) for w in [w0, w1) ∩ [0, WK)
  let after: bigint; // keys of one row of a window past WK
  if (f.causal) {
    // row p of window w < WK: window blocks ws..ws+p, summaries of the w windows before
    window = (w, n) =>
      w < WK ? (n * (n + 1n)) / 2n + n * w * vs : w === WK ? sumClamp(1n, n, rK) + n * WK * vs : n * summaryBelowB;
    fullRange = (w0, w1) => {
      const c = w1 - w0;
      return c <= 0n ? 0n : c * ((s * (s + 1n)) / 2n) + s * vs * (((w0 + w1 - 1n) * c) / 2n);
    };
    after = summaryBelowB;
  } else {
    // every summary column below B, and the window's other blocks below B
    window = (w, n) => n * (summaryBelowB + (w < WK ? s - vs : w === WK ? rK - sr(rK) : 0n));
    fullRange = (w0, w1) => {
      const c = w1 - w0;
      return c <= 0n ? 0n : c * s * (summaryBelowB + s - vs);
    };
    after = summaryBelowB;
  }
  // Whole windows [0, WQ): those before WK, WK itself, those after; then the partial window WQ.
  let total = fullRange(0n, min(WQ, WK));
  if (WK < WQ) total += window(WK, s) + (WQ - WK - 1n) * s * after;
  if (rQ > 0n) total += window(WQ, rQ);
  return total;
}

/**
 * Allowed pairs of the 'fixed' pattern for nQ queries and nK keys with blocks of bs: whole
 * visited blocks, except that causal diagonal blocks are lower-triangular (j <= i).
 */
export function fixedPairCount(f: FixedShape, bs: number, nQ: number, nK: number): bigint {
  if (nQ <= 0 || nK <= 0) return 0n;
  const E = (A: number, B: number) => fixedBlockCount(f, A, B);
  const b = big(bs);
  const QBf = Math.floor(nQ / bs);
  const qr = big(nQ % bs);
  const KBf = Math.floor(nK / bs);
  const kr = big(nK % bs);
  // Every visited block weighted rows × columns inside [0, nQ) × [0, nK): whole blocks, the
  // partial key column KBf, the partial query row QBf, and their corner.
  const whole = E(QBf, KBf);
  let pairs = b * b * whole;
  if (kr > 0n) pairs += b * kr * (E(QBf, KBf + 1) - whole);
  if (qr > 0n) pairs += qr * b * (E(QBf + 1, KBf) - whole);
  if (qr > 0n && kr > 0n) pairs += qr * kr * (E(QBf + 1, KBf + 1) - E(QBf, KBf + 1) - E(QBf + 1, KBf) + whole);
  if (!f.causal) return pairs;
  // Causal diagonal blocks keep j <= i: R·C - Σ_{r<R} min(r + 1, C) pairs of each are masked.
  const masked = (R: bigint, C: bigint) => R * C - sumClamp(1n, R, C);
  const n0 = Math.min(QBf, KBf);
  pairs -= big(n0) * masked(b, b);
  const QB = Math.ceil(nQ / bs);
  const KB = Math.ceil(nK / bs);
  if (n0 < Math.min(QB, KB)) pairs -= masked(n0 < QBf ? b : qr, n0 < KBf ? b : kr);
  return pairs;
}
