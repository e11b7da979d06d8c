// The kernel ABI has one source (src/backends/wasm/abi.ts): the AssemblyScript side is
// generated from it, every build carries its hash, and the sizes the two sides must agree
// on are checked here against the kernels themselves, for every build this runtime runs.
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ABI_HASH, type KernelExports } from '../src/backends/wasm/abi.js';
import { GENERATED_PATH, assemblyScriptAbi } from '../src/backends/wasm/abi-codegen.js';
import { MemoryArena, align } from '../src/backends/wasm/arena.js';
import { WasmEngine } from '../src/backends/wasm/engine.js';
import { KERNEL_BASE64 } from '../src/backends/wasm/kernels.generated.js';
import { checkAbi, provideKernels } from '../src/backends/wasm/kernels.js';
import { maskRecordWords } from '../src/backends/wasm/masks.js';
import { CallTables } from '../src/backends/wasm/tables.js';
import type { BlockLayout } from '../src/layout/block-layout.js';
import type { Plan } from '../src/plan.js';
import { UnsupportedError } from '../src/errors.js';

const bytesOf = (build: string) => Uint8Array.from(atob((KERNEL_BASE64 as Record<string, string>)[build]), (c) => c.charCodeAt(0));
const BUILDS = Object.keys(KERNEL_BASE64).filter((b) => WebAssembly.validate(bytesOf(b)));

function instantiate(build: string): { kernel: KernelExports; memory: WebAssembly.Memory } {
  const shared = build.endsWith('.mt');
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytesOf(build)), { env: { memory } });
  return { kernel: checkAbi(instance.exports, build), memory };
}

/** One sequence of one block of bs queries and bs keys, fully allowed. */
function oneBlockPlan(d: number, bs: number): Plan {
  const layout: BlockLayout = {
    blockSize: bs, nQB: 1, nKB: 1,
    rowPtr: Int32Array.of(0, 1), cols: Int32Array.of(0), maskIds: Int32Array.of(-1), masks: [],
  };
  return {
    batch: 1, nCtx: bs, nK: bs, nEmbd: d, heads: 1, kvHeads: 1, headDim: d, blockSize: bs, regroup: 0, seqLen: bs, keyLen: bs,
    layouts: [layout], headLayout: Int32Array.of(0), keyLengths: null,
  } as unknown as Plan;
}

describe('kernel ABI', () => {
  it(`${GENERATED_PATH} is generated from the tables in abi.ts as they are now`, () => {
    expect(readFileSync(GENERATED_PATH, 'utf8')).toBe(assemblyScriptAbi());
  });

  it.each(BUILDS)('build %s carries the ABI hash of abi.ts', (build) => {
    const { kernel } = instantiate(build);
    expect(kernel.bsattn_abi_hash() >>> 0).toBe(ABI_HASH);
  });

  it.each(BUILDS)('build %s steps through mask records as the host writes them, block 8..256', (build) => {
    const { kernel } = instantiate(build);
    for (let bs = 8; bs <= 256; bs += 8) expect(kernel.bsattn_mask_record_bytes(bs), `block ${bs}`).toBe(maskRecordWords(bs) * 4);
  });

  // Canaries over two threads' scratch: thread 0 must use its scratch to the last word
  // and never write past it (the padding to 64 bytes and thread 1's scratch stay as set).
  const DIMS = [1, 3, 4, 7, 8, 16, 31, 64, 100, 128];
  const BLOCKS = [8, 16, 24, 32, 40, 64, 128];
  it.each(BUILDS)('build %s uses exactly bsattn_scratch_bytes of scratch, head dim 1..128 × block 8..128', (build) => {
    for (const d of DIMS) {
      for (const bs of BLOCKS) {
        const { kernel, memory } = instantiate(build);
        const arena = new MemoryArena(memory, kernel.heap_base(), (f) => f(), () => {});
        const tables = new CallTables(arena, kernel);
        const n = bs * d;
        const input = () => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + d));
        const job = tables.layOut({ plan: oneBlockPlan(d, bs), q: input(), k: input(), v: input() }, 2);
        job.copyQ();
        const used = kernel.bsattn_scratch_bytes(d, bs);
        const end = job.scratch[1] + align(used);
        const u8 = new Uint8Array(memory.buffer);
        u8.fill(0xa5, job.scratch[0], end);
        kernel.bsattn_pack_f32(job.params);
        kernel.bsattn_fwd_f32(job.params, job.scratch[0]);
        const where = `head dim ${d}, block ${bs}`;
        const past = u8.subarray(job.scratch[0] + used, end).findIndex((b) => b !== 0xa5);
        expect(past, `${where}: byte ${past} past the scratch was written`).toBe(-1);
        const lastWord = new Uint32Array(memory.buffer, job.scratch[0] + used - 4, 1)[0];
        expect(lastWord, `${where}: the last scratch word (α of the last row) was not written`).not.toBe(0xa5a5a5a5);
        expect(job.read(new Float32Array(n)).every(Number.isFinite), where).toBe(true);
      }
    }
  });
});

/** A module with the exports the engine reads first: bsattn_abi_hash() = 42, heap_base() = 42. */
function otherAbiModule(): Uint8Array {
  const name = (s: string) => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];
  const section = (id: number, body: number[]) => [id, body.length, ...body];
  const body = [4, 0, 0x41, 42, 0x0b]; // no locals; i32.const 42; end
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 0, 1, 0x7f]), // type 0: () -> i32
    ...section(2, [1, ...name('env'), ...name('memory'), 0x02, 0x00, 1]), // env.memory, min 1 page
    ...section(3, [2, 0, 0]),
    ...section(7, [2, ...name('bsattn_abi_hash'), 0x00, 0, ...name('heap_base'), 0x00, 1]),
    ...section(10, [2, ...body, ...body]),
  ]);
}

describe('a kernel build of another ABI', () => {
  afterAll(() => provideKernels({ scalar: bytesOf('scalar') }));

  it('is refused when the engine starts, naming both hashes', () => {
    provideKernels({ scalar: otherAbiModule() });
    let error: unknown;
    try {
      WasmEngine.create(false, 'scalar');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UnsupportedError);
    expect(String(error)).toMatch(/'scalar' kernel build does not match this version .*0x0000002a, expected 0x[0-9a-f]{8}/);
  });
});
