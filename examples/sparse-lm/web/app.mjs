// The page: loads the model over HTTP (../model.json, ../weights.safetensors, ../dense.*.wasm),
// streams a continuation into #out, shows tokens/s and the attention path, and draws each
// layer's layout. window.sparseLm.run(options) is what the headless test drives.
import { loadModel } from '../load.mjs';
import { generate } from '../model.mjs';
import { layoutSvg } from '../layout-svg.mjs';

const $ = (id) => document.getElementById(id);
const base = new URL('../', import.meta.url);
const models = new Map();

async function model(path) {
  if (!models.has(path)) models.set(path, await loadModel({ path, threads: Math.min(4, navigator.hardwareConcurrency || 2) }, base));
  return models.get(path);
}

/** Generates into the page; returns what ran (the test compares the bytes with Node's). */
async function run({ prompt, tokens, temperature, topK, seed, path }) {
  const m = await model(path);
  if (path === 'webgpu') {
    const why = await m.support();
    if (why) throw new Error(why);
  }
  const out = $('out');
  out.textContent = '';
  const p = document.createElement('span');
  p.className = 'prompt';
  p.textContent = new TextDecoder().decode(prompt);
  out.append(p);
  const text = document.createTextNode('');
  out.append(text);
  const decoder = new TextDecoder();
  const r = await generate(m, prompt, {
    tokens, temperature, topK, seed,
    onToken: (b) => { text.data += decoder.decode(Uint8Array.of(b), { stream: true }); },
  });
  const path_ = r.lastRun ? `${r.lastRun.backend} (${r.lastRun.detail})` : '?';
  $('stats').textContent = `prefill ${r.prefillMs.toFixed(1)} ms (${prompt.length} bytes) · ${r.tokensPerSecond.toFixed(1)} tokens/s · attention ${path_} · kv ${m.kv} · dense ${m.dense.name}` +
    ` · crossOriginIsolated ${globalThis.crossOriginIsolated}${m.verified ? ' · weights SHA-256 verified' : ''}`;
  return { bytes: r.tokens, prefillMs: r.prefillMs, tokensPerSecond: r.tokensPerSecond, lastRun: r.lastRun, kv: m.kv, dense: m.dense.name, crossOriginIsolated: globalThis.crossOriginIsolated, cores: navigator.hardwareConcurrency };
}

function fromForm() {
  return {
    prompt: new TextEncoder().encode($('prompt').value),
    tokens: Number($('tokens').value),
    temperature: Number($('temperature').value),
    topK: Number($('topk').value),
    seed: Number($('seed').value),
    path: $('path').value,
  };
}

const config = await (await fetch(new URL('model.json', base))).json();
$('layouts').innerHTML = config.layers.map((s, l) => layoutSvg(s.attn, s.L, { title: `layer ${l}: ${s.attn} L=${s.L}` })).join('');
window.sparseLm = { run };
await model('auto');
const go = $('go');
go.disabled = false;
go.textContent = 'generate';
go.onclick = async () => {
  go.disabled = true;
  try {
    await run(fromForm());
  } catch (e) {
    $('stats').textContent = `error: ${e.message}`;
  } finally {
    go.disabled = false;
  }
};
window.sparseLmReady = true;
