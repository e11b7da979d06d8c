#!/usr/bin/env node
// Bundles worker.mjs for workerd (esbuild with wrangler's conditions: 'sparse-attention'
// resolves to dist/workerd.js, .wasm / .json / .safetensors imports stay modules) into a
// folder with config.capnp and the files it embeds.
//   npm run build && node examples/sparse-lm/worker/build.mjs [OUT_DIR] [--serve]
// --serve then runs `workerd serve OUT_DIR/config.capnp` (http://127.0.0.1:8787).
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const HERE = fileURLToPath(new URL('./', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Writes the worker folder; `port` replaces config.capnp's 8787 (0: workerd picks one). Returns esbuild's metafile inputs. */
export async function buildWorker(out, { port = 8787 } = {}) {
  mkdirSync(out, { recursive: true });
  const built = await esbuild.build({
    entryPoints: [join(HERE, 'worker.mjs')],
    outfile: join(out, 'worker.js'),
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    external: ['*.wasm', '*.safetensors', './model.json', 'node:*'],
    metafile: true,
    logLevel: 'warning',
  });
  writeFileSync(join(out, 'config.capnp'), readFileSync(join(HERE, 'config.capnp'), 'utf8').replace('127.0.0.1:8787', `127.0.0.1:${port}`));
  for (const f of ['model.json', 'weights.safetensors', 'dense.relaxed.wasm', 'dense.simd.wasm']) copyFileSync(join(EXAMPLE, f), join(out, f));
  for (const b of ['relaxed', 'simd']) copyFileSync(join(ROOT, `dist/bsattn.${b}.wasm`), join(out, `bsattn.${b}.wasm`));
  return Object.keys(built.metafile.inputs);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const out = args.find((a) => !a.startsWith('--')) ?? join(EXAMPLE, 'out', 'worker');
  await buildWorker(out);
  console.log(`worker in ${out}`);
  if (args.includes('--serve')) {
    console.log('workerd: http://127.0.0.1:8787/generate  (curl -N -d \'{"prompt":"def ","tokens":200}\' http://127.0.0.1:8787/generate)');
    spawn(join(ROOT, 'node_modules/.bin/workerd'), ['serve', join(out, 'config.capnp')], { stdio: 'inherit' });
  }
}
