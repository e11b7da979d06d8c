// Compiles assembly/dense.ts into dense.simd.wasm (f32x4 mul + add) and dense.relaxed.wasm
// (relaxed FMA), committed beside this script so the example runs without a build. Each
// exports its memory, `matmul` and `swiglu`, and imports nothing. The ".mt" builds import a
// shared memory ("env.memory") instead, for dense-threads.mjs's workers.
//   node examples/sparse-lm/build-wasm.mjs
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const asc = fileURLToPath(new URL('../../node_modules/assemblyscript/bin/asc.js', import.meta.url));
const MT = ['--enable', 'threads', '--importMemory', '--sharedMemory', '--maximumMemory', '16384'];
for (const [name, flags] of [
  ['simd', ['--enable', 'simd']],
  ['relaxed', ['--enable', 'simd', '--enable', 'relaxed-simd']],
  ['simd.mt', ['--enable', 'simd', ...MT]],
  ['relaxed.mt', ['--enable', 'simd', '--enable', 'relaxed-simd', ...MT]],
]) {
  const out = `${here}dense.${name}.wasm`;
  execFileSync(process.execPath, [
    asc, `${here}assembly/dense.ts`, '-O3', '--noAssert', '--runtime', 'stub', '--use', 'abort=',
    '--initialMemory', '2', ...flags, '--outFile', out,
  ], { stdio: 'inherit' });
  console.log(`${out}  ${statSync(out).size} bytes`);
}
