// Kernel entry points. One module per ISA build (see scripts/build-wasm.mjs).
export { bsattn_abi_hash, bsattn_fwd_f32, bsattn_mask_record_bytes, bsattn_pack_f32, bsattn_scratch_bytes } from './bsattn_fwd';

/** First byte of linear memory the host may use (after the kernel's static data). */
export function heap_base(): usize {
  return __heap_base;
}
