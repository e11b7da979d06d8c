// Compiles assembly/dense.ts into dense.simd.wasm (f32x4 mul + add) and dense.relaxed.wasm
// (relaxed FMA), committed beside this script so the example runs without a build.
// Each exports its memory and `matmul`; neither imports anything.
//   node examples/sparse-lm/build-wasm.mjs
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const asc = fileURLToPath(new URL('../../node_modules/assemblyscript/bin/asc.js', import.meta.url));
for (const [name, flags] of [
  ['simd', ['--enable', 'simd']],
  ['relaxed', ['--enable', 'simd', '--enable', 'relaxed-simd']],
]) {
  const out = `${here}dense.${name}.wasm`;
  execFileSync(process.execPath, [
    asc, `${here}assembly/dense.ts`, '-O3', '--noAssert', '--runtime', 'stub', '--use', 'abort=',
    '--initialMemory', '2', ...flags, '--outFile', out,
  ], { stdio: 'inherit' });
  console.log(`${out}  ${statSync(out).size} bytes`);
}
