// Kernel entry points. One module per ISA build (see scripts/build-wasm.mjs).
export { bsattn_abi_hash, bsattn_fwd_f32, bsattn_mask_record_bytes, bsattn_pack_f32, bsattn_scratch_bytes } from './bsattn_fwd';
// The half conversions the kernel uses, for the exhaustive checks of test/f16.test.ts.
export { narrowRun as bsattn_narrow_half, widenRun as bsattn_widen_half } from './half';
// The soft cap the kernel applies, for test/cpu-modifiers.test.ts's error check.
export { softcapRun as bsattn_softcap } from './block';

/** First byte of linear memory the host may use (after the kernel's static data). */
export function heap_base(): usize {
  return __heap_base;
}
