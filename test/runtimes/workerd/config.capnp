# workerd config for test/runtimes/workerd.test.ts. The test copies this file next to the
# bundled worker (worker.js) and the kernel builds from dist/, and overrides the socket
# address with --socket-addr http=127.0.0.1:<free port>: it only ever listens on loopback.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .smokeWorker) ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ],
);

const smokeWorker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    # dist/workerd.js imports these as "./bsattn.<build>.wasm": CompiledWasm modules.
    (name = "bsattn.relaxed.wasm", wasm = embed "bsattn.relaxed.wasm"),
    (name = "bsattn.simd.wasm", wasm = embed "bsattn.simd.wasm"),
  ],
  compatibilityDate = "2025-06-01",
);
