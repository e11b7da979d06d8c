// Parity with PyTorch (fixtures.json, written by train.py from the same weights): the logits
// at fixture positions and the greedy continuation. Used by check-parity.mjs (every check)
// and test/sparse-lm.test.ts (a shorter budget).
import { readBytes } from './load.mjs';

/** The logits tolerance of issue 19 (max abs, f32). */
export const LOGITS_ATOL = 1e-4;

export async function loadFixtures() {
  return JSON.parse(new TextDecoder().decode(await readBytes('fixtures.json')));
}

export function b64bytes(s) {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

export function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Prefills `set`'s prompt (first `upto` bytes) and returns [{ position, diff }] for its fixture positions. */
export async function logitsParity(model, set, upto = set.length) {
  const prompt = b64bytes(set.bytes_b64).subarray(0, upto);
  const fixtures = set.logits.filter((f) => f.position < upto);
  const state = model.createState(prompt.length);
  try {
    const { at } = await model.prefill(prompt, state, fixtures.map((f) => f.position));
    return fixtures.map((f) => ({ position: f.position, diff: maxAbsDiff(at.get(f.position), f.logits) }));
  } finally {
    state.dispose();
  }
}

/**
 * Greedy continuation of fixtures.short's prompt for `steps` bytes, compared with
 * fixtures.greedy. A first difference is accepted only where PyTorch's top-2 gap is below
 * `gapTol`. Returns { steps, firstDiff (or -1), gapAtDiff, ok, tokens }.
 */
export async function greedyParity(model, fx, steps = fx.greedy.tokens.length, gapTol = LOGITS_ATOL) {
  const prompt = b64bytes(fx.short.bytes_b64);
  const state = model.createState(prompt.length + steps);
  try {
    let { last } = await model.prefill(prompt, state);
    const tokens = [];
    for (let i = 0; i < steps; i++) {
      let b = 0;
      for (let j = 1; j < last.length; j++) if (last[j] > last[b]) b = j;
      tokens.push(b);
      if (b !== fx.greedy.tokens[i]) {
        const gap = fx.greedy.top2_gap[i];
        return { steps: i + 1, firstDiff: i, gapAtDiff: gap, ok: gap < gapTol, tokens };
      }
      if (i + 1 < steps) last = await model.step(Uint8Array.of(b), state);
    }
    return { steps, firstDiff: -1, gapAtDiff: null, ok: true, tokens };
  } finally {
    state.dispose();
  }
}

/**
 * Whether `bytes` (greedy bytes after fixtures.short's prompt) agree with PyTorch's
 * continuation: identical, or first differing at a step where PyTorch's top-2 gap is below
 * `gapTol` (a tie within f32 noise). Returns null when they agree, else what differs.
 */
export function greedyMismatch(bytes, fx, gapTol = LOGITS_ATOL) {
  const want = fx.greedy.tokens;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === want[i]) continue;
    const gap = fx.greedy.top2_gap[i];
    return gap < gapTol ? null : `byte ${i}: ${bytes[i]}, PyTorch ${want[i]} (its top-2 gap there ${gap})`;
  }
  return null;
}
