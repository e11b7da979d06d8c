// npm run build: kernels (asc) → bundles (esbuild) → types (tsc).
// Targets es2022: esbuild's default emits Uint8Array.fromBase64, which Node 20–24 lack.
import { execFileSync } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import * as esbuild from 'esbuild';

execFileSync(process.execPath, ['scripts/build-wasm.mjs'], { stdio: 'inherit' });
rmSync('dist', { recursive: true, force: true });
const common = { bundle: true, format: 'esm', target: 'es2022', platform: 'neutral', sourcemap: true, logLevel: 'warning' };
await esbuild.build({
  ...common,
  entryPoints: { index: 'src/index.ts', worker: 'src/backends/wasm/worker.ts' },
  outdir: 'dist',
  external: ['node:*', 'webgpu'],
  // WGSL programs (shaders/*.wgsl) are bundled as strings.
  loader: { '.wgsl': 'text' },
});
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
for (const f of ['index.js', 'worker.js']) console.log(`dist/${f}  ${statSync(`dist/${f}`).size} bytes`);
