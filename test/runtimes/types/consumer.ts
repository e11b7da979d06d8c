// Type-checked by test/runtimes/types.test.ts as a consumer would: every entry imported by
// the package's own name, so the .d.ts must resolve through package.json "exports".
import { SparseAttention, attentionReference, init, wasmVariants, type PlanInfo, type RunInfo, type SparseAttentionOptions } from 'sparse-attention';
import * as core from 'sparse-attention/core';
import * as workerd from 'sparse-attention/workerd';

const options: SparseAttentionOptions = { causal: true, backend: 'wasm', threads: 2 };
const attn = new SparseAttention(4, 'strided', 8, 32, options);
const x = { data: new Float32Array(2 * 64 * 64), shape: [2, 64, 64] as [number, number, number] };
const plan: PlanInfo = attn.plan(x.shape);
export async function use(): Promise<number> {
  await init({ url: new URL('https://example.com/bsattn.simd.wasm') });
  await core.init([{ build: 'relaxed', bytes: new Uint8Array(8) }, { build: 'simd', module: {} as WebAssembly.Module }]);
  const out = await attn.forward(x, x, x);
  const q = attn.createTensor(x.shape);
  const o = attn.createTensor([2, 64, 64]);
  const again = await attn.forward(q, x, x, { out: o.data, keyLengths: [64, 10] });
  const sync = attn.forwardSync(q, x, x, { out: new Float32Array(x.data.length) });
  const released: boolean = attn.releaseTensor(q) && attn.releaseTensor(o);
  const buf = { size: 4, usage: 0, destroy() {} };
  // @ts-expect-error: forwardGPU's out is a GPUBuffer, not a Float32Array
  void attn.forwardGPU(buf, buf, buf, x.shape, { out: new Float32Array(4) });
  void again; void sync; void released;
  const run: RunInfo | null = attn.lastRun;
  const ref = attentionReference(x, x, x, 4, 'strided', 8, 32, options);
  const w: typeof SparseAttention = workerd.SparseAttention;
  void w;
  return out.data[0] + ref.data[0] + plan.density + (run?.ms ?? 0) + wasmVariants().length;
}
// @ts-expect-error: an unknown kernel build is a type error
void init({ build: 'avx512', bytes: new Uint8Array(8) });
