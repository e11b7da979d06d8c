// The sparse-lm model (train.py's SparseLM, the same f16 weights widened to f32) as one ONNX
// graph with DENSE causal attention, for onnxruntime-node and onnxruntime-web: the peer of
// the example in bench-ort.mjs. One graph serves prefill and decode: dynamic S (new bytes)
// and P (cached positions), past/present K/V per layer.
//
// Per layer: RMSNorm (Pow → ReduceMean → Add → Sqrt → Div → Mul, which ORT fuses into
// SimplifiedLayerNormalization), one MatMul to packed q|k|v [S, 256 + 64 + 64], then
// com.microsoft.GroupQueryAttention (8 query / 2 K/V heads, head 32, RoPE inside the op:
// do_rotary with rotate-half cos/sin tables equal to the example's, its own causal masking
// over past + new keys, no mask tensor), wo, residual Add, RMSNorm, one MatMul to [S, 2·704]
// split into gate and up, silu(gate)·up, w2, residual Add. Then the final RMSNorm and the tied
// output layer (tok_embᵀ). GroupQueryAttention rather than MultiHeadAttention: it takes the
// 2 K/V heads as they are (MHA would need them repeated to 8, 4× the cache and its copies),
// does the rotary on the packed projection, and masks causally from seqlens_k alone; both
// runtimes' CPU kernels have it. It is dense: every query reads every earlier key (ORT has no
// sparse CPU attention), so this graph is NOT the sparse model; its logits equal the example
// run with every layer in the library's dense causal 'all' mode (test/sparse-lm-onnx.test.ts).
//
//   node examples/sparse-lm/onnx/export.mjs [out.onnx] [--all-logits]
// writes the graph (17 MB of f32 weights; default examples/sparse-lm/out/sparse-lm-dense.onnx).
// The runner (ort-lm.mjs) builds it in memory instead.
import protobuf from 'protobufjs';
// The subset of onnx/onnx.proto the project's ONNX peers are written with (field numbers as there).
import { ONNX_SUBSET } from '../../../bench/peers/onnx-graph.mjs';

const FLOAT = 1, INT32 = 6, INT64 = 7;
const ModelProto = protobuf.parse(ONNX_SUBSET).root.lookupType('onnx.ModelProto');

const dims = (shape) => shape.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d }));
const value = (name, elemType, shape) => ({ name, type: { tensorType: { elemType, shape: { dim: dims(shape) } } } });
const attrInt = (name, i) => ({ name, type: 2, i });
const attrFloat = (name, f) => ({ name, type: 1, f });
const attrInts = (name, ints) => ({ name, type: 7, ints });
const f32 = (name, shape, data) => ({ name, dims: shape, dataType: FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
const i64 = (name, shape, list) => ({ name, dims: shape, dataType: INT64, int64Data: list });

/** [out, in] row-major → [in, out] (x·Wᵀ as MatMul(x, Wt)); several [out_i, in] stacked along out. */
function transposeStack(mats, inDim) {
  const outDim = mats.reduce((a, m) => a + m.length / inDim, 0);
  const t = new Float32Array(inDim * outDim);
  let col = 0;
  for (const m of mats) {
    const rows = m.length / inDim;
    for (let r = 0; r < rows; r++) for (let i = 0; i < inDim; i++) t[i * outDim + col + r] = m[r * inDim + i];
    col += rows;
  }
  return t;
}

/**
 * model.json's configuration with every layer in the library's dense causal 'all' mode: the
 * JavaScript model this graph must equal (createModel(denseConfig(config), weights)).
 */
export function denseConfig(config) {
  return { ...config, layers: config.layers.map((s) => ({ ...s, attn: 'all' })) };
}

/** The rotary tables [positions, headDim/2]: angle p · base^(−2i/headDim) in f64, cos/sin rounded to f32 (as model.mjs). */
export function ropeTables(config, positions = config.n_ctx_max) {
  const half = config.head_dim / 2;
  const inv = Array.from({ length: half }, (_, i) => config.rope_base ** ((-2 * i) / config.head_dim));
  const cos = new Float32Array(positions * half), sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      cos[p * half + i] = Math.cos(p * inv[i]);
      sin[p * half + i] = Math.sin(p * inv[i]);
    }
  }
  return { cos, sin };
}

/**
 * ONNX bytes of the model. tensors: { name: { data: Float32Array } } (weights.mjs's
 * parseSafetensors). options.allLogits: logits of every new row [1, S, vocab] (else only
 * the last row, [1, 1, vocab], as generation needs). options.maxPositions: the rotary
 * tables' length (default config.n_ctx_max).
 *
 * Inputs:  input_ids int32 [1, S]; seqlens_k int32 [1] (= P + S − 1); total_sequence_length
 *          int32 [] (= P + S); past_key_l, past_value_l float [1, 2, P, 32] for each layer l.
 * Outputs: logits float [1, S or 1, 256]; present_key_l, present_value_l [1, 2, P + S, 32].
 */
export function exportModel(config, tensors, { allLogits = false, maxPositions = config.n_ctx_max } = {}) {
  const d = config.d_model, H = config.n_head, KV = config.n_kv_head, D = config.head_dim, F = config.d_ff, V = config.vocab_size;
  const t = (name) => tensors[name].data;
  const nodes = [];
  const init = [];
  const node = (opType, input, output, attribute = [], domain = '') => nodes.push({ opType, input, output, name: `${opType}_${nodes.length}`, attribute, domain });

  init.push(f32('tok_emb', [V, d], t('tok_emb')));
  init.push(f32('tok_emb_t', [d, V], transposeStack([t('tok_emb')], d)));
  init.push({ name: 'two', dims: [], dataType: FLOAT, floatData: [2] });
  init.push({ name: 'eps', dims: [], dataType: FLOAT, floatData: [config.norm_eps] });
  init.push(i64('ff_split', [2], [F, F]));
  const { cos, sin } = ropeTables(config, maxPositions);
  init.push(f32('cos_cache', [maxPositions, D / 2], cos));
  init.push(f32('sin_cache', [maxPositions, D / 2], sin));

  const rmsNorm = (x, w, out) => {
    node('Pow', [x, 'two'], [`${out}_sq`]);
    node('ReduceMean', [`${out}_sq`], [`${out}_ms`], [attrInts('axes', [-1]), attrInt('keepdims', 1)]);
    node('Add', [`${out}_ms`, 'eps'], [`${out}_mse`]);
    node('Sqrt', [`${out}_mse`], [`${out}_rms`]);
    node('Div', [x, `${out}_rms`], [`${out}_n`]);
    node('Mul', [`${out}_n`, w], [out]);
  };

  node('Gather', ['tok_emb', 'input_ids'], ['x0'], [attrInt('axis', 0)]);
  const inputs = [value('input_ids', INT32, [1, 'S']), value('seqlens_k', INT32, [1]), value('total_sequence_length', INT32, [])];
  const outputs = [value('logits', FLOAT, [1, allLogits ? 'S' : 1, V])];
  let x = 'x0';
  for (let l = 0; l < config.n_layer; l++) {
    const p = `l${l}_`;
    init.push(f32(`${p}attn_norm`, [d], t(`layers.${l}.attn_norm`)));
    init.push(f32(`${p}mlp_norm`, [d], t(`layers.${l}.mlp_norm`)));
    init.push(f32(`${p}wqkv`, [d, (H + 2 * KV) * D], transposeStack([t(`layers.${l}.wq`), t(`layers.${l}.wk`), t(`layers.${l}.wv`)], d)));
    init.push(f32(`${p}wo`, [H * D, d], transposeStack([t(`layers.${l}.wo`)], H * D)));
    init.push(f32(`${p}w13`, [d, 2 * F], transposeStack([t(`layers.${l}.w1`), t(`layers.${l}.w3`)], d)));
    init.push(f32(`${p}w2`, [F, d], transposeStack([t(`layers.${l}.w2`)], F)));
    inputs.push(value(`past_key_${l}`, FLOAT, [1, KV, 'P', D]), value(`past_value_${l}`, FLOAT, [1, KV, 'P', D]));
    outputs.push(value(`present_key_${l}`, FLOAT, [1, KV, 'T', D]), value(`present_value_${l}`, FLOAT, [1, KV, 'T', D]));

    rmsNorm(x, `${p}attn_norm`, `${p}h`);
    node('MatMul', [`${p}h`, `${p}wqkv`], [`${p}qkv`]);
    node(
      'GroupQueryAttention',
      [`${p}qkv`, '', '', `past_key_${l}`, `past_value_${l}`, 'seqlens_k', 'total_sequence_length', 'cos_cache', 'sin_cache'],
      [`${p}attn`, `present_key_${l}`, `present_value_${l}`],
      [attrInt('num_heads', H), attrInt('kv_num_heads', KV), attrFloat('scale', 1 / Math.sqrt(D)), attrInt('do_rotary', 1), attrInt('rotary_interleaved', 0)],
      'com.microsoft',
    );
    node('MatMul', [`${p}attn`, `${p}wo`], [`${p}o`]);
    node('Add', [x, `${p}o`], [`${p}x1`]);
    rmsNorm(`${p}x1`, `${p}mlp_norm`, `${p}h2`);
    node('MatMul', [`${p}h2`, `${p}w13`], [`${p}gu`]);
    node('Split', [`${p}gu`, 'ff_split'], [`${p}g`, `${p}u`], [attrInt('axis', -1)]);
    node('Sigmoid', [`${p}g`], [`${p}gs`]);
    node('Mul', [`${p}g`, `${p}gs`], [`${p}silu`]);
    node('Mul', [`${p}silu`, `${p}u`], [`${p}m`]);
    node('MatMul', [`${p}m`, `${p}w2`], [`${p}mo`]);
    node('Add', [`${p}x1`, `${p}mo`], [`${p}x2`]);
    x = `${p}x2`;
  }
  if (!allLogits) {
    init.push(i64('last_row', [1], [-1]));
    node('Gather', [x, 'last_row'], ['x_last'], [attrInt('axis', 1)]);
    x = 'x_last';
  }
  init.push(f32('final_norm', [d], t('final_norm')));
  rmsNorm(x, 'final_norm', 'xf');
  node('MatMul', ['xf', 'tok_emb_t'], ['logits']);

  const model = {
    irVersion: 8,
    producerName: 'sparse-attention examples/sparse-lm/onnx',
    opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
    graph: { name: 'sparse_lm_dense_causal', input: inputs, output: outputs, initializer: init, node: nodes },
  };
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

const isMain = globalThis.process?.argv?.[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href;
if (isMain) {
  const { readFile, writeFile, mkdir } = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const { readWeights } = await import('../weights.mjs');
  const here = new URL('../', import.meta.url);
  const args = process.argv.slice(2);
  const out = args.find((a) => !a.startsWith('--')) ?? fileURLToPath(new URL('out/sparse-lm-dense.onnx', here));
  const config = JSON.parse(await readFile(new URL('model.json', here), 'utf8'));
  const { tensors } = await readWeights(await readFile(new URL(config.weights.file, here)), config);
  const bytes = exportModel(config, tensors, { allLogits: args.includes('--all-logits') });
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, bytes);
  console.log(`wrote ${out} (${bytes.length} bytes)`);
}
