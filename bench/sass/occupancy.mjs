// How many workgroups of a given workgroup-memory size run at once on this adapter: each
// workgroup increments a live counter on entry, records the maximum, spins, decrements.
// The maximum / SM count = resident workgroups per SM (the driver's shared-memory carveout
// and register file decide it; the kernel here uses few registers).
//   node bench/sass/occupancy.mjs [sms=132]
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const sms = Number(process.argv[2] ?? 132);
const gpu = create([]);
const adapter = await gpu.requestAdapter();
const device = await adapter.requestDevice({ requiredLimits: { maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize } });
const counters = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
const read = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
for (const kib of [8, 16, 24, 32, 40, 48]) {
  for (const threads of [128, 256]) {
    const n = (kib * 1024) / 16;
    const code = `
@group(0) @binding(0) var<storage, read_write> c: array<atomic<u32>, 4>;
var<workgroup> buf: array<vec4<f32>, ${n}>;
@compute @workgroup_size(${threads})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) w: vec3<u32>) {
  if (t == 0u) { let now = atomicAdd(&c[0], 1u) + 1u; atomicMax(&c[1], now); }
  for (var i = t; i < ${n}u; i += ${threads}u) { buf[i] = vec4<f32>(f32(i)); }
  workgroupBarrier();
  var x = buf[(t * 7u) % ${n}u].x;
  for (var i = 0u; i < 20000u; i++) { x = fma(x, 1.0000001, 0.5); }
  workgroupBarrier();
  if (x == 12345.0) { buf[t] = vec4<f32>(x); }
  if (t == 0u) { atomicSub(&c[0], 1u); if (x == 1.0) { atomicAdd(&c[2], 1u); } }
}`;
    const module = device.createShaderModule({ code });
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const bind = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: counters } }] });
    device.queue.writeBuffer(counters, 0, new Uint32Array(4));
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(sms * 16);
    pass.end();
    enc.copyBufferToBuffer(counters, 0, read, 0, 16);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const [, max] = new Uint32Array(read.getMappedRange().slice(0));
    read.unmap();
    console.log(`${kib} KiB, ${threads} threads: at most ${max} workgroups at once = ${(max / sms).toFixed(2)} per SM`);
  }
}
device.destroy();
process.exit(0);
