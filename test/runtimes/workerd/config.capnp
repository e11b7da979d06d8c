# workerd config for test/runtimes/workerd.test.ts. The test copies this file next to the
# bundled worker (worker.js) and the kernel builds from dist/. Both sockets listen on
# loopback only, on ports workerd picks and reports through --control-fd.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .smokeWorker),
    (name = "compat", worker = .smokeWorkerNodeCompat),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:0", http = (), service = "main"),
    (name = "http-compat", address = "127.0.0.1:0", http = (), service = "compat"),
  ],
);

const modules :List(Workerd.Worker.Module) = [
  (name = "worker.js", esModule = embed "worker.js"),
  # dist/workerd.js imports these as "./bsattn.<build>.wasm": CompiledWasm modules.
  (name = "bsattn.relaxed.wasm", wasm = embed "bsattn.relaxed.wasm"),
  (name = "bsattn.simd.wasm", wasm = embed "bsattn.simd.wasm"),
];

const smokeWorker :Workerd.Worker = (modules = .modules, compatibilityDate = "2025-06-01");

# The same worker with nodejs_compat, where `process` exists: still single-threaded.
const smokeWorkerNodeCompat :Workerd.Worker = (
  modules = .modules,
  compatibilityDate = "2025-06-01",
  compatibilityFlags = ["nodejs_compat"],
);
