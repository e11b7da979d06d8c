// npm run build: kernels (asc) → bundles (esbuild) → types (tsc) → docs/runtimes.md's sizes (scripts/sizes.mjs).
// Targets es2022: esbuild's default emits Uint8Array.fromBase64, which Node 20–24 lack.
//
// dist/index.js    Node, Deno, Bun (and browsers without a bundler): kernels embedded as base64,
//                  threads via dist/worker.js
// dist/browser.js  the same entry with its Node-only imports (node:*, webgpu) cut out, for the
//                  'browser' condition: browser bundlers fail on node: specifiers
// dist/worker.js   the CPU worker (worker_threads or a module Worker)
// dist/core.js     the same API with no kernels embedded: call init() first (bundlers that place the .wasm)
// dist/core.browser.js  dist/core.js without the Node-only imports, for the 'browser' condition
// dist/workerd.js  Cloudflare-style workers: imports ./bsattn.{relaxed,simd}.wasm as modules, single-threaded
// dist/bsattn.<build>.wasm  the kernel builds, for workerd.js, core.js + init() and bundlers
// dist/types/      .d.ts of the public API
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

execFileSync(process.execPath, ['scripts/build-wasm.mjs'], { stdio: 'inherit' });
rmSync('dist', { recursive: true, force: true });
// WGSL programs (shaders/*.wgsl) are bundled as strings.
const common = {
  bundle: true, format: 'esm', target: 'es2022', platform: 'neutral', sourcemap: true, logLevel: 'warning',
  loader: { '.wgsl': 'text' },
};
// The entries must load without top-level await (a bundler or a worker runtime may not
// allow it): esbuild fails the build if one appears.
const noTopLevelAwait = { supported: { 'top-level-await': false } };

/** Replaces modules by build-time stand-ins (path → file). */
const substitute = (name, rules) => ({
  name,
  setup(build) {
    for (const [filter, file] of rules) {
      build.onResolve({ filter }, () => ({ path: fileURLToPath(new URL(`../${file}`, import.meta.url)) }));
    }
  },
});
const noKernels = [/kernels\.generated\.js$/, 'src/entries/no-kernels.ts'];
const noNodeModules = [/^(node:.*|webgpu)$/, 'src/entries/no-module.ts'];

await esbuild.build({
  ...common,
  ...noTopLevelAwait,
  entryPoints: { index: 'src/index.ts' },
  outdir: 'dist',
  external: ['node:*', 'webgpu'],
});
await esbuild.build({
  ...common,
  ...noTopLevelAwait,
  entryPoints: { browser: 'src/index.ts' },
  outdir: 'dist',
  plugins: [substitute('browser', [noNodeModules])],
});
// The worker may await at top level (it imports node:worker_threads only where there is no `self`).
await esbuild.build({
  ...common,
  entryPoints: { worker: 'src/backends/wasm/worker.ts' },
  outdir: 'dist',
  external: ['node:*'],
});
await esbuild.build({
  ...common,
  ...noTopLevelAwait,
  entryPoints: { core: 'src/index.ts' },
  outdir: 'dist',
  external: ['node:*', 'webgpu'],
  plugins: [substitute('no-kernels', [noKernels])],
});
await esbuild.build({
  ...common,
  ...noTopLevelAwait,
  entryPoints: { 'core.browser': 'src/index.ts' },
  outdir: 'dist',
  plugins: [substitute('no-kernels-browser', [noKernels, noNodeModules])],
});
await esbuild.build({
  ...common,
  ...noTopLevelAwait,
  entryPoints: { workerd: 'src/entries/workerd.ts' },
  outdir: 'dist',
  external: ['*.wasm'],
  plugins: [substitute('workerd', [noKernels, noNodeModules])],
});
for (const f of readdirSync('build')) if (/^bsattn\..*\.wasm$/.test(f)) copyFileSync(`build/${f}`, `dist/${f}`);
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
// Each bundle gets a .d.ts beside it, for code that imports a dist file by path (the tests).
for (const f of ['index', 'browser', 'core', 'core.browser', 'workerd']) writeFileSync(`dist/${f}.d.ts`, "export * from './types/index.js';\n");

// Nothing shipped may compile code from strings (CSP 'unsafe-eval', workers forbid it).
for (const f of readdirSync('dist')) {
  if (!f.endsWith('.js')) continue;
  const text = readFileSync(`dist/${f}`, 'utf8');
  const hit = /\beval\s*\(|new\s+Function\s*\(|\bFunction\s*\(\s*['"`]/.exec(text);
  if (hit) throw new Error(`build: dist/${f} contains '${hit[0]}' (no eval or new Function in the package)`);
}
const sizes = readdirSync('dist')
  .filter((f) => /\.(js|wasm)$/.test(f))
  .map((f) => `dist/${f}  ${statSync(`dist/${f}`).size} bytes (gzip ${gzipSync(readFileSync(`dist/${f}`)).length})`);
console.log(sizes.join('\n'));
// docs/runtimes.md's Sizes block, from the files just built and `npm pack --dry-run`.
execFileSync(process.execPath, ['scripts/sizes.mjs'], { stdio: 'inherit' });
