// Loads the model from this folder: from the file system in Node, Deno and Bun, from URLs
// (fetch) in a browser or a worker. Both end in model.mjs's createModel, which takes bytes.
import { WASM_FILES, WASM_MT_FILES } from './dense.mjs';
import { createModel, denseThreads } from './model.mjs';

const HERE = new URL('./', import.meta.url);

/** Bytes of a file of this folder (or any URL): file: URLs through node:fs, others through fetch. */
export async function readBytes(url) {
  const u = new URL(url, HERE);
  if (u.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    const { fileURLToPath } = await import('node:url');
    return new Uint8Array(await readFile(fileURLToPath(u)));
  }
  const r = await fetch(u);
  if (!r.ok) throw new Error(`sparse-lm: ${u.href}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

/**
 * model.json, weights.safetensors and the dense kernel from `base` (this folder by default),
 * then createModel(config, weights, options). options.dense 'js' skips the kernel.
 */
export async function loadModel(options = {}, base = HERE) {
  const at = (f) => new URL(f, base);
  const config = JSON.parse(new TextDecoder().decode(await readBytes(at('model.json'))));
  const wasm = options.dense !== 'js';
  const mt = wasm && denseThreads(options) > 1;
  const [weights, relaxed, simd, relaxedMt, simdMt] = await Promise.all([
    readBytes(at(config.weights.file)),
    wasm ? readBytes(at(WASM_FILES.relaxed)) : null,
    wasm ? readBytes(at(WASM_FILES.simd)) : null,
    mt ? readBytes(at(WASM_MT_FILES.relaxed)) : null,
    mt ? readBytes(at(WASM_MT_FILES.simd)) : null,
  ]);
  return createModel(config, weights, { wasm: { relaxed, simd }, wasmThreaded: mt ? { relaxed: relaxedMt, simd: simdMt } : undefined, ...options });
}
