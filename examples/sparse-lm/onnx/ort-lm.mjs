// Runs export.mjs's dense-attention graph in onnxruntime (node: native CPU EP; web: WASM),
// with the same interface as model.mjs's SparseLM where generation needs it: createState,
// step(bytes, state) → logits, prefill(bytes, state) in chunks, and the same greedy sampling
// (model.mjs's sample()). K/V live in ORT tensors, in one of two ways (option kvBuffer):
//   'copy'    each call feeds the past K/V and keeps the present ones it returns (the op copies
//             past + new into a new present tensor; onnxruntime-web also copies both in and out
//             of its heap every call, as any user of its JS API must);
//   'shared'  (onnxruntime-node) one buffer per layer of the state's capacity, fed as past and
//             bound as the preallocated present output, so the op writes the new rows in place
//             (GroupQueryAttention's shared past/present mode, as onnxruntime-genai runs it).
import { exportModel } from './export.mjs';

/**
 * An onnxruntime session on the graph. `ort`: the onnxruntime-node or onnxruntime-web module.
 * options:
 *   runtime    'node' | 'web' (labels, and which session options apply)
 *   threads    intra-op threads (node: intraOpNumThreads; web: set ort.env.wasm.numThreads
 *              before the first session — it is global to the wasm instance)
 *   chunk      prefill bytes per call (default 512, as the example)
 *   allLogits  the graph returns every new row's logits (tests), else the last row's only
 */
export async function createOrtLM(ort, config, tensors, options = {}) {
  const { runtime = 'node', threads = 2, chunk = 512, allLogits = false, kvBuffer = 'copy' } = options;
  if (kvBuffer !== 'copy' && kvBuffer !== 'shared') throw new Error(`ort-lm: kvBuffer must be 'copy' or 'shared' (got ${JSON.stringify(kvBuffer)})`);
  const bytes = exportModel(config, tensors, { allLogits });
  const sessionOptions = { graphOptimizationLevel: 'all', executionMode: 'sequential' };
  if (runtime === 'node') {
    Object.assign(sessionOptions, {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      // Softmax tails of long dense rows are denormals; MLAS without DAZ runs them slowly.
      extra: { session: { set_denormal_as_zero: '1' } },
    });
  } else {
    sessionOptions.executionProviders = ['wasm'];
  }
  const session = await ort.InferenceSession.create(bytes, sessionOptions);
  return new OrtLM(ort, session, config, { runtime, threads, chunk, allLogits, kvBuffer });
}

export class OrtLM {
  constructor(ort, session, config, { runtime, threads, chunk, allLogits, kvBuffer = 'copy' }) {
    this.ort = ort;
    this.session = session;
    this.config = config;
    this.runtime = runtime;
    this.threads = threads;
    this.chunk = chunk;
    this.allLogits = allLogits;
    this.kvBuffer = kvBuffer;
    this.name = `onnxruntime-${runtime} ${runtime === 'node' ? 'native CPU EP' : 'wasm'}, ${threads} threads, GroupQueryAttention (dense causal), K/V ${kvBuffer === 'shared' ? 'shared past/present buffers' : 'copied each call'}`;
  }

  /** An empty K/V state (past length 0); 'shared' buffers hold `capacity` positions. */
  createState(capacity = this.config.n_ctx_max) {
    const { n_kv_head: KV, head_dim: D, n_layer } = this.config;
    if (this.kvBuffer === 'shared') {
      const buf = () => new this.ort.Tensor('float32', new Float32Array(KV * capacity * D), [1, KV, capacity, D]);
      return { length: 0, capacity, past: Array.from({ length: n_layer }, () => ({ key: buf(), value: buf() })), dispose() {} };
    }
    const empty = () => new this.ort.Tensor('float32', new Float32Array(0), [1, KV, 0, D]);
    return { length: 0, past: Array.from({ length: n_layer }, () => ({ key: empty(), value: empty() })), dispose() {} };
  }

  /**
   * Runs `tokens` (a Uint8Array of at most `chunk` bytes) at positions state.length …;
   * returns the logits: of every new row [n·vocab] with allLogits, else of the last one.
   */
  async step(tokens, state) {
    const n = tokens.length;
    if (n < 1) throw new Error('ort-lm: step takes at least one byte');
    const total = state.length + n;
    if (state.capacity !== undefined && total > state.capacity) throw new Error(`ort-lm: ${total} positions exceed the state's capacity (${state.capacity})`);
    if (total > this.config.n_ctx_max) throw new Error(`ort-lm: ${total} positions exceed the graph's rotary tables (${this.config.n_ctx_max})`);
    const T = this.ort.Tensor;
    const feeds = {
      input_ids: new T('int32', Int32Array.from(tokens), [1, n]),
      seqlens_k: new T('int32', Int32Array.of(total - 1), [1]),
      total_sequence_length: new T('int32', Int32Array.of(total), []),
    };
    state.past.forEach((kv, l) => {
      feeds[`past_key_${l}`] = kv.key;
      feeds[`past_value_${l}`] = kv.value;
    });
    if (this.kvBuffer === 'shared') {
      // The same tensors as past inputs and present outputs: the op sees one pointer and
      // appends in place (seqlens_k says how many rows are valid).
      const fetches = { logits: null };
      state.past.forEach((kv, l) => {
        fetches[`present_key_${l}`] = kv.key;
        fetches[`present_value_${l}`] = kv.value;
      });
      const out = await this.session.run(feeds, fetches);
      state.length = total;
      return out.logits.data;
    }
    const out = await this.session.run(feeds);
    state.past = state.past.map((_, l) => ({ key: out[`present_key_${l}`], value: out[`present_value_${l}`] }));
    state.length = total;
    return out.logits.data;
  }

  /** Feeds `bytes` in chunks; returns { last } (the last byte's logits), and with allLogits `all` [bytes.length·vocab]. */
  async prefill(bytes, state) {
    const V = this.config.vocab_size;
    const all = this.allLogits ? new Float32Array(bytes.length * V) : null;
    let last = null;
    for (let c = 0; c < bytes.length; c += this.chunk) {
      const part = bytes.subarray(c, Math.min(bytes.length, c + this.chunk));
      const lg = await this.step(part, state);
      if (all) all.set(lg, c * V);
      last = lg.slice(lg.length - V);
    }
    return { last, all };
  }

  dispose() {
    return this.session.release();
  }
}
