#!/usr/bin/env node
// Every parity check against PyTorch's fixtures: the short prompt's logits, the whole greedy
// continuation (256 bytes), and with --long the 8,192-byte prompt's logits.
//   node examples/sparse-lm/check-parity.mjs [--long] [--steps N] [--path cpu|webgpu] [--dense wasm|js] [--kv cache|host] [--chunk N]
// One line per check; exits 1 on a failure.
import { loadModel } from './load.mjs';
import { LOGITS_ATOL, greedyParity, loadFixtures, logitsParity } from './parity.mjs';

const argv = globalThis.Deno ? globalThis.Deno.args : process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(name);
  return i < 0 ? dflt : argv[i + 1];
};

const model = await loadModel({ path: arg('--path', 'cpu'), dense: arg('--dense', 'wasm'), kv: arg('--kv'), chunk: arg('--chunk') ? Number(arg('--chunk')) : undefined });
const fx = await loadFixtures();
let failed = 0;
const report = (ok, line) => {
  if (!ok) failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${line}`);
};
console.log(`dense ${model.dense.name}, kv ${model.kv}, path ${arg('--path', 'cpu')}; fixtures for weights ${fx.weights_sha256.slice(0, 12)}…`);
for (const r of await logitsParity(model, fx.short)) report(r.diff <= LOGITS_ATOL, `short logits at ${r.position}: max |js − torch| = ${r.diff.toExponential(2)}`);
const g = await greedyParity(model, fx, Number(arg('--steps', fx.greedy.tokens.length)));
report(g.ok, g.firstDiff < 0 ? `greedy: ${g.steps} bytes identical (PyTorch's smallest top-2 gap ${fx.greedy.min_top2_gap} at step ${fx.greedy.argmin_top2_gap})`
  : `greedy: first difference at step ${g.firstDiff} (PyTorch top-2 gap there ${g.gapAtDiff})`);
if (argv.includes('--long')) {
  for (const r of await logitsParity(model, fx.long)) report(r.diff <= LOGITS_ATOL, `long logits at ${r.position}: max |js − torch| = ${r.diff.toExponential(2)}`);
}
console.log(`lastRun: ${JSON.stringify(model.lastRun)}`);
model.dispose();
if (failed) globalThis.Deno ? globalThis.Deno.exit(1) : process.exit(1);
