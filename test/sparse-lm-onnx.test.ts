// examples/sparse-lm/onnx (issue 19, "Speed, side by side"): the model exported to one ONNX
// graph with dense causal GroupQueryAttention, the peer of bench-ort.mjs. Its logits must
// equal the JavaScript model with the same weights and every layer in the library's dense
// causal 'all' mode (denseConfig) — at every position of a prompt prefilled in chunks (past
// and present K/V, the op's masking across chunks, RoPE from the op's tables) and at decode
// steps — in onnxruntime-web (WASM) always, and in onnxruntime-node where bench/peers has it.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: plain ESM example modules without types
import { createModel } from '../examples/sparse-lm/model.mjs';
// @ts-expect-error: plain ESM example modules without types
import { readWeights } from '../examples/sparse-lm/weights.mjs';
// @ts-expect-error: plain ESM example modules without types
import { LOGITS_ATOL, b64bytes, maxAbsDiff } from '../examples/sparse-lm/parity.mjs';
// @ts-expect-error: plain ESM example modules without types
import { denseConfig, exportModel } from '../examples/sparse-lm/onnx/export.mjs';
// @ts-expect-error: plain ESM example modules without types
import { createOrtLM } from '../examples/sparse-lm/onnx/ort-lm.mjs';
// @ts-expect-error: plain ESM example modules without types
import { loadOrtNode } from '../examples/sparse-lm/onnx/ort-node.mjs';
import { CI, recordSkip } from './optional.js';
import { ROOT } from './runtimes/harness.js';

const DIR = `${ROOT}examples/sparse-lm/`;
const fx = JSON.parse(readFileSync(`${DIR}fixtures.json`, 'utf8'));
const config = JSON.parse(readFileSync(`${DIR}model.json`, 'utf8'));
const weightBytes = new Uint8Array(readFileSync(`${DIR}${config.weights.file}`));
// 320 bytes in 128-byte chunks: three calls, the last two with past K/V; past position 256 so
// the local layers' window would matter if the graph were (wrongly) sparse.
const PROMPT: Uint8Array = b64bytes(fx.short.bytes_b64).subarray(0, 320);
const CHUNK = 128;
const STEPS = 8;
const V = config.vocab_size;

interface JsModel {
  createState(capacity: number): unknown;
  prefill(bytes: Uint8Array, state: unknown, positions?: number[]): Promise<{ last: Float32Array; at: Map<number, Float32Array> }>;
  step(bytes: Uint8Array, state: unknown): Promise<Float32Array>;
  dispose(): void;
}
interface OrtLM {
  name: string;
  createState(capacity?: number): { length: number };
  prefill(bytes: Uint8Array, state: unknown): Promise<{ last: Float32Array; all: Float32Array }>;
  step(bytes: Uint8Array, state: unknown): Promise<Float32Array>;
  dispose(): Promise<void>;
}

const positions = Array.from({ length: PROMPT.length }, (_, i) => i);
let reference: { at: Map<number, Float32Array>; steps: { byte: number; logits: Float32Array }[]; sparse: Map<number, Float32Array> };

beforeAll(async () => {
  // The dense reference: the example's own code with 'all' attention everywhere (plain-JS dense
  // products, the library's KV cache), and the sparse model itself to show the graph is not it.
  const dense: JsModel = await createModel(denseConfig(config), weightBytes, { path: 'cpu', dense: 'js', chunk: CHUNK, threads: 1 });
  const sparse: JsModel = await createModel(config, weightBytes, { path: 'cpu', dense: 'js', chunk: CHUNK, threads: 1 });
  try {
    const st = dense.createState(PROMPT.length + STEPS);
    const { at } = await dense.prefill(PROMPT, st, positions);
    const steps = [];
    let last = at.get(PROMPT.length - 1)!;
    for (let i = 0; i < STEPS; i++) {
      let byte = 0;
      for (let j = 1; j < V; j++) if (last[j] > last[byte]) byte = j;
      last = await dense.step(Uint8Array.of(byte), st);
      steps.push({ byte, logits: last });
    }
    const sp = (await sparse.prefill(PROMPT, sparse.createState(PROMPT.length), positions)).at;
    reference = { at, steps, sparse: sp };
  } finally {
    dense.dispose();
    sparse.dispose();
  }
});

async function expectDenseParity(lm: OrtLM) {
  const state = lm.createState();
  const { all } = await lm.prefill(PROMPT, state);
  expect(all.length).toBe(PROMPT.length * V);
  let worst = 0, fromSparse = 0;
  for (const p of positions) {
    const o = all.subarray(p * V, (p + 1) * V);
    worst = Math.max(worst, maxAbsDiff(o, reference.at.get(p)));
    if (p >= 64) fromSparse = Math.max(fromSparse, maxAbsDiff(o, reference.sparse.get(p)));
  }
  expect(worst, `${lm.name}: max |onnx − js dense| over ${PROMPT.length} positions`).toBeLessThanOrEqual(LOGITS_ATOL);
  // Past position 64 the strided layers of the sparse model see far fewer keys: the dense
  // graph must differ from it there by much more than the f32 noise.
  expect(fromSparse).toBeGreaterThan(1e-2);
  for (const [i, s] of reference.steps.entries()) {
    const o = await lm.step(Uint8Array.of(s.byte), state);
    expect(maxAbsDiff(o, s.logits), `${lm.name}: decode step ${i}`).toBeLessThanOrEqual(LOGITS_ATOL);
  }
  expect(state.length).toBe(PROMPT.length + STEPS);
}

describe('sparse-lm ONNX graph (dense causal GroupQueryAttention)', () => {
  const opened: OrtLM[] = [];
  afterAll(async () => {
    for (const lm of opened) await lm.dispose();
  });

  it('is a valid ONNX model of the expected size (every weight once, tok_emb twice for lookup and tied output)', async () => {
    const { tensors } = await readWeights(weightBytes, config);
    const bytes: Uint8Array = exportModel(config, tensors);
    const floats = Object.values(tensors as Record<string, { data: Float32Array }>).reduce((a, t) => a + t.data.length, 0);
    const rope = config.n_ctx_max * config.head_dim; // cos and sin tables, headDim/2 each
    expect(bytes.length).toBeGreaterThan(4 * (floats + config.vocab_size * config.d_model + rope));
    expect(bytes.length).toBeLessThan(4 * (floats + config.vocab_size * config.d_model + rope) + 65536);
  });

  it('onnxruntime-web (WASM, 2 threads) equals the JS dense variant within 1e-4, chunked prefill and decode', async () => {
    const ort = await import('onnxruntime-web');
    ort.env.wasm.numThreads = 2;
    const { tensors } = await readWeights(weightBytes, config);
    const lm: OrtLM = await createOrtLM(ort, config, tensors, { runtime: 'web', threads: 2, chunk: CHUNK, allLogits: true });
    opened.push(lm);
    await expectDenseParity(lm);
  });

  it.for(['copy', 'shared'])('onnxruntime-node (native CPU, 2 threads, K/V %s) equals the JS dense variant within 1e-4', async (kvBuffer, ctx) => {
    const ort = loadOrtNode();
    if (!ort) {
      // A benchmark dependency (288 MB) kept out of `npm install`; CI installs it (.ci/run).
      if (CI) throw new Error('SPARSE_ATTENTION_CI=1: onnxruntime-node must be installed in bench/peers (node scripts/setup-bench.mjs)');
      recordSkip({ what: 'sparse-lm ONNX graph in onnxruntime-node', why: 'onnxruntime-node is not installed in bench/peers (a benchmark dependency)', enable: 'node scripts/setup-bench.mjs' });
      ctx.skip('onnxruntime-node is not installed in bench/peers (node scripts/setup-bench.mjs)');
      return;
    }
    const { tensors } = await readWeights(weightBytes, config);
    const lm: OrtLM = await createOrtLM(ort, config, tensors, { runtime: 'node', threads: 2, chunk: CHUNK, allLogits: true, kvBuffer });
    opened.push(lm);
    await expectDenseParity(lm);
  });
});
