#!/usr/bin/env node
// Generates text with the sparse-lm model, streaming each byte to stdout as it is produced,
// then one summary line (prefill ms, tokens/s, the attention path that ran).
// Works in Node (20+), Deno (deno run --allow-read generate.mjs …) and Bun.
//
//   node examples/sparse-lm/generate.mjs --prompt "def " --tokens 200
//     [--temperature T] [--top-k K] [--seed S] [--path auto|cpu|webgpu] [--threads N]
//     [--prompt-file F] [--dense wasm|js] [--kv cache|host] [--chunk N] [--json]
// --json: print one JSON line (the bytes, timings, lastRun) at the end instead of the summary.
import { loadModel, readBytes } from './load.mjs';
import { generate } from './model.mjs';

const g = globalThis;
const argv = g.Deno ? g.Deno.args : g.process.argv.slice(2);
const opts = { prompt: 'def ', tokens: 200, temperature: 0, topK: 0, seed: 1, path: 'auto' };
const NAMES = { '--prompt': 'prompt', '--prompt-file': 'promptFile', '--tokens': 'tokens', '--temperature': 'temperature', '--top-k': 'topK', '--seed': 'seed', '--path': 'path', '--threads': 'threads', '--dense': 'dense', '--kv': 'kv', '--chunk': 'chunk' };
const NUMERIC = new Set(['tokens', 'temperature', 'topK', 'seed', 'threads', 'chunk']);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--json') {
    opts.json = true;
    continue;
  }
  const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
  const key = NAMES[flag];
  if (!key) fail(`unknown argument ${a}`);
  const value = inline ?? argv[++i];
  if (value === undefined) fail(`${flag} needs a value`);
  opts[key] = NUMERIC.has(key) ? Number(value) : value;
  if (NUMERIC.has(key) && !Number.isFinite(opts[key])) fail(`${flag} must be a number (got ${value})`);
}

function fail(msg) {
  console.error(`generate.mjs: ${msg}`);
  g.Deno ? g.Deno.exit(2) : g.process.exit(2);
}

function write(bytes) {
  if (g.Deno) g.Deno.stdout.writeSync(bytes);
  else g.process.stdout.write(bytes);
}

const prompt = opts.promptFile ? await readBytes(new URL(opts.promptFile, `file://${g.Deno ? g.Deno.cwd() : g.process.cwd()}/`)) : new TextEncoder().encode(opts.prompt);
const model = await loadModel({ path: opts.path, threads: opts.threads, dense: opts.dense, kv: opts.kv, chunk: opts.chunk }).catch((e) => fail(e.message));
if (opts.path === 'webgpu') {
  // Fail before streaming anything when the GPU path cannot run the model's shapes.
  const why = await model.support();
  if (why) fail(why);
}
if (!opts.json && !opts.promptFile) write(prompt);
const r = await generate(model, prompt, {
  tokens: opts.tokens,
  temperature: opts.temperature,
  topK: opts.topK,
  seed: opts.seed,
  onToken: opts.json ? undefined : (b) => write(Uint8Array.of(b)),
}).catch((e) => fail(e.message));
const runtime = g.Deno ? `deno ${g.Deno.version.deno}` : g.Bun ? `bun ${g.Bun.version}` : `node ${g.process.versions.node}`;
const summary = {
  runtime,
  promptBytes: prompt.length,
  tokens: r.tokens.length,
  prefillMs: Math.round(r.prefillMs * 10) / 10,
  tokensPerSecond: Math.round(r.tokensPerSecond * 10) / 10,
  dense: model.dense.name,
  kv: model.kv,
  path: r.lastRun ? `${r.lastRun.backend} (${r.lastRun.detail})` : null,
  weightsVerified: model.verified,
  timing: r.timing,
};
if (opts.json) {
  console.log(JSON.stringify({ ...summary, bytes: r.tokens, lastRun: r.lastRun }));
} else {
  write(new TextEncoder().encode('\n'));
  console.log(
    `-- ${runtime}: prefill ${summary.prefillMs} ms (${prompt.length} bytes), ${summary.tokensPerSecond} tokens/s (${r.tokens.length} bytes), ` +
      `attention ${summary.path}, kv ${model.kv}, dense ${model.dense.name}${model.verified ? ', weights SHA-256 verified' : ''}`,
  );
}
model.dispose();
