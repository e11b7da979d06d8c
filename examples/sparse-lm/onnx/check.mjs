#!/usr/bin/env node
// Checks the exported graph before any timing: its logits at every position of a prompt
// (prefilled in chunks, so past/present K/V and the op's causal masking across chunks are
// exercised), then at each of some decode steps, against the JavaScript model with the
// same weights and every layer in dense causal 'all' mode (denseConfig). Also prints how far
// both are from the sparse model, which they must not equal.
//   node examples/sparse-lm/onnx/check.mjs [--runtime node|web] [--kv-buffer shared|copy] [--bytes 1000] [--chunk 256] [--steps 16]
import { readFile } from 'node:fs/promises';
import { createModel } from '../model.mjs';
import { loadModel } from '../load.mjs';
import { readWeights } from '../weights.mjs';
import { b64bytes, loadFixtures, maxAbsDiff } from '../parity.mjs';
import { loadOrtNode } from './ort-node.mjs';
import { denseConfig } from './export.mjs';
import { createOrtLM } from './ort-lm.mjs';

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(name);
  return i < 0 ? dflt : argv[i + 1];
};
const runtime = arg('--runtime', 'node');
const nBytes = Number(arg('--bytes', 1000));
const chunk = Number(arg('--chunk', 256));
const steps = Number(arg('--steps', 16));
const kvBuffer = runtime === 'node' ? arg('--kv-buffer', 'shared') : 'copy';
const HERE = new URL('../', import.meta.url);

let ort;
if (runtime === 'node') {
  ort = loadOrtNode();
  if (!ort) throw new Error('onnxruntime-node is not installed: node scripts/setup-bench.mjs');
} else {
  ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = 2;
}
const config = JSON.parse(await readFile(new URL('model.json', HERE), 'utf8'));
const weightBytes = await readFile(new URL(config.weights.file, HERE));
const { tensors } = await readWeights(weightBytes, config);
const prompt = b64bytes((await loadFixtures()).long.bytes_b64).subarray(0, nBytes);
const positions = Array.from({ length: nBytes }, (_, i) => i);

const lm = await createOrtLM(ort, config, tensors, { runtime, threads: 2, chunk, allLogits: true, kvBuffer });
const dense = await createModel(denseConfig(config), weightBytes, { path: 'cpu', dense: 'js', chunk });
const sparse = await loadModel({ path: 'cpu', dense: 'js', chunk });
const so = lm.createState(nBytes + steps), sd = dense.createState(nBytes + steps), ss = sparse.createState(nBytes);
const { all } = await lm.prefill(prompt, so);
const ref = (await dense.prefill(prompt, sd, positions)).at;
const sp = (await sparse.prefill(prompt, ss, positions)).at;
let worst = 0, fromSparse = 0;
for (const p of positions) {
  const o = all.subarray(p * 256, (p + 1) * 256);
  worst = Math.max(worst, maxAbsDiff(o, ref.get(p)));
  fromSparse = Math.max(fromSparse, maxAbsDiff(o, sp.get(p)));
}
let last = ref.get(nBytes - 1), worstStep = 0;
for (let i = 0; i < steps; i++) {
  let b = 0;
  for (let j = 1; j < 256; j++) if (last[j] > last[b]) b = j;
  const o = await lm.step(Uint8Array.of(b), so);
  last = await dense.step(Uint8Array.of(b), sd);
  worstStep = Math.max(worstStep, maxAbsDiff(o, last));
}
console.log(`${lm.name}: ${nBytes}-byte prompt in ${chunk}-byte chunks, max |onnx − js dense| over every position ${worst.toExponential(2)}, over ${steps} decode steps ${worstStep.toExponential(2)}; max |onnx − sparse model| ${fromSparse.toFixed(3)} (the graph is dense, as intended)`);
for (const m of [dense, sparse]) m.dispose();
await lm.dispose();
process.exit(worst <= 1e-4 && worstStep <= 1e-4 ? 0 : 1);
