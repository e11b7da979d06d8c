// WebAssembly SIMD peak of one core, from two hand-encoded microkernels (no toolchain):
//   mul+add:     acc_c = f32x4.add(f32x4.mul(acc_c, m), a)          8 flops per chain step
//   relaxed FMA: acc_c = f32x4.relaxed_madd(acc_c, m, a)            8 flops per chain step
// CHAINS independent accumulators hide the latency (FMA 4 cycles × 2 ports needs >= 8);
// m = 0.999, a = 0.001 keep every value near 1 (no overflow, no denormals).
//   node [--experimental-wasm-relaxed-simd] bench/simd-peak.mjs [--json]
// Prints GFLOP/s (median of timed calls after tier-up warm-up); relaxed needs the flag on Node 20.
import { parseArgs, median } from './lib.mjs';

const CHAINS = 10, UNROLL = 4;

const leb = (n) => { const out = []; do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n); return out; };
const section = (id, bytes) => [id, ...leb(bytes.length), ...bytes];
const f32x4Const = (x) => [0xfd, 0x0c, ...new Uint8Array(new Float32Array([x, x, x, x]).buffer)];
const SIMD = { mul: [0xfd, ...leb(230)], add: [0xfd, ...leb(228)], relaxedMadd: [0xfd, ...leb(261)], extractLane0: [0xfd, 0x1f, 0] };
const get = (i) => [0x20, ...leb(i)], set = (i) => [0x21, ...leb(i)];

/** Module exporting run(n: i32) -> f32: n loop trips of UNROLL × CHAINS chain steps. */
function peakModule(fma) {
  const M = CHAINS + 1, A = CHAINS + 2; // local 0 = n, 1..CHAINS = acc
  const body = [...f32x4Const(0.999), ...set(M), ...f32x4Const(0.001), ...set(A)];
  for (let c = 1; c <= CHAINS; c++) body.push(...f32x4Const(1 + c / 64), ...set(c));
  body.push(0x03, 0x40); // loop
  for (let u = 0; u < UNROLL; u++) {
    for (let c = 1; c <= CHAINS; c++) {
      body.push(...(fma ? [...get(c), ...get(M), ...get(A), ...SIMD.relaxedMadd] : [...get(c), ...get(M), ...SIMD.mul, ...get(A), ...SIMD.add]), ...set(c));
    }
  }
  body.push(...get(0), 0x41, 1, 0x6b, 0x22, 0, 0x0d, 0, 0x0b); // n = n - 1; br_if loop; end
  body.push(...get(1));
  for (let c = 2; c <= CHAINS; c++) body.push(...get(c), ...SIMD.add);
  body.push(...SIMD.extractLane0, 0x0b);
  const func = [1, CHAINS + 2, 0x7b, ...body]; // one local group: CHAINS + 2 v128
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, [1, 0x60, 1, 0x7f, 1, 0x7d]), // type (i32) -> f32
    ...section(3, [1, 0]),
    ...section(7, [1, 3, ...new TextEncoder().encode('run'), 0, 0]),
    ...section(10, [1, ...leb(func.length), ...func]),
  ]);
}

/** GFLOP/s of one variant, or null where the runtime does not validate it. */
export async function measurePeak(fma, { ms = 1500 } = {}) {
  const bytes = peakModule(fma);
  if (!WebAssembly.validate(bytes)) return null;
  const { instance } = await WebAssembly.instantiate(bytes);
  const run = instance.exports.run;
  const trips = 200_000, flops = trips * UNROLL * CHAINS * 8;
  const t0 = performance.now();
  while (performance.now() - t0 < 300) run(1000); // Liftoff → TurboFan tier-up (no OSR in wasm)
  const gflops = [];
  const start = performance.now();
  while (gflops.length < 7 || performance.now() - start < ms) {
    const t = performance.now();
    run(trips);
    gflops.push(flops / ((performance.now() - t) * 1e6));
  }
  return { gflops: median(gflops), best: Math.max(...gflops), samples: gflops.length };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = parseArgs();
  const res = {
    node: process.version, execArgv: process.execArgv, chains: CHAINS, unroll: UNROLL,
    mulAdd: await measurePeak(false), relaxedFma: await measurePeak(true),
  };
  if (args.json) console.log(JSON.stringify(res));
  else console.log(`one core, ${process.version} ${process.execArgv.join(' ')}: f32x4 mul+add ${res.mulAdd?.gflops.toFixed(1)} GFLOP/s, relaxed FMA ${res.relaxedFma ? res.relaxedFma.gflops.toFixed(1) + ' GFLOP/s' : 'not validated'}`);
}
