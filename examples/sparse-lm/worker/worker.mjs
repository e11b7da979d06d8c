// A Cloudflare-style worker serving the model (workerd; wrangler bundles it the same way):
//   POST /generate { prompt, tokens = 200, temperature = 0, topK = 0, seed = 1 }
//        → the continuation's bytes, streamed as they are produced (text/plain)
//   GET  /info → { dense, kv, path of the last call, weightsVerified, ... }
// Workers cannot compile WebAssembly from bytes: the dense kernels and the library's kernels
// arrive as imported .wasm modules, the weights as a data module (config.capnp). No shared
// memory there: the attention runs on one thread, K and V kept by the example ('host').
import config from './model.json';
import weights from './weights.safetensors';
import relaxed from './dense.relaxed.wasm';
import simd from './dense.simd.wasm';
import { createModel, generate } from '../model.mjs';

let modelPromise = null;
let queue = Promise.resolve();
let last = null;

/** The model, built at the first request and kept for the isolate's life. */
function model() {
  modelPromise ??= createModel(config, new Uint8Array(weights), { wasm: { relaxed, simd }, path: 'cpu', denseThreads: 1 });
  return modelPromise;
}

/** One generation at a time: the model's work buffers are shared by its calls. */
function exclusive(fn) {
  const run = queue.then(fn, fn);
  queue = run.catch(() => {});
  return run;
}

function fail(status, message) {
  return Response.json({ error: message }, { status });
}

export default {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    if (pathname === '/info' && request.method === 'GET') {
      const m = await model();
      return Response.json({ dense: m.dense.name, kv: m.kv, weightsVerified: m.verified, last });
    }
    if (pathname !== '/generate') return fail(404, 'not found: POST /generate or GET /info');
    if (request.method !== 'POST') return fail(405, 'POST /generate');
    let body;
    try {
      body = await request.json();
    } catch {
      return fail(400, 'the body must be JSON: { prompt, tokens, temperature, topK, seed }');
    }
    const { prompt, tokens = 200, temperature = 0, topK = 0, seed = 1 } = body;
    if (typeof prompt !== 'string' || prompt.length === 0) return fail(400, 'prompt must be a non-empty string');
    const bytes = new TextEncoder().encode(prompt);
    if (!Number.isInteger(tokens) || tokens < 1 || bytes.length + tokens > config.n_ctx_max) {
      return fail(400, `tokens must be an integer ≥ 1 with the prompt's ${bytes.length} bytes + tokens ≤ ${config.n_ctx_max}`);
    }
    const m = await model();
    const { readable, writable } = new TransformStream();
    const writer = writable.getWriter();
    exclusive(async () => {
      try {
        const r = await generate(m, bytes, { tokens, temperature, topK, seed, onToken: (b) => void writer.write(Uint8Array.of(b)) });
        last = { prefillMs: r.prefillMs, tokensPerSecond: r.tokensPerSecond, lastRun: r.lastRun };
        await writer.close();
      } catch (e) {
        await writer.abort(e);
      }
    });
    return new Response(readable, { headers: { 'content-type': 'application/octet-stream', 'x-sparse-lm-kv': m.kv, 'x-sparse-lm-dense': m.dense.name } });
  },
};
