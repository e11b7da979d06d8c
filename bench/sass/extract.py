# SASS of the WGSL kernels as NVIDIA's Vulkan driver compiled them (Dawn -> SPIR-V -> SASS).
# The driver's shader disk cache (__GL_SHADER_DISK_CACHE_PATH) holds zstd frames; the
# compute programs among them are 'NVDANVVMNVuc' containers whose code section (u32 size
# at 0x4c, u32 offset at 0x50, instructions from offset + 8) nvdisasm reads as a raw SM90
# binary. nvdisasm comes with Triton (PyTorch's dependency) on the GPU machine.
#   python3 bench/sass/extract.py <cache dir> <out dir>   (needs the zstd command)
#   python3 bench/sass/extract.py --summary <file.sass>   (the summary of a saved disassembly)
# Writes <out>/p<N>.code, p<N>.sass (when nvdisasm is found) and prints, per program, its
# size, highest register, spills and the instruction mix of each backward-branch loop.
import glob, os, re, shutil, struct, subprocess, sys
from collections import Counter

def find_nvdisasm():
    hits = glob.glob('/opt/**/triton/backends/nvidia/bin/nvdisasm', recursive=True)
    return hits[0] if hits else shutil.which('nvdisasm')

def frames(data):
    i = 0
    while (i := data.find(b'\x28\xb5\x2f\xfd', i)) >= 0:
        r = subprocess.run(['zstd', '-dcq'], input=data[i:], capture_output=True)
        if r.stdout:
            yield r.stdout
        i += 4

def summary(sass):
    lines = [l for l in sass.splitlines() if re.match(r'\s+/\*[0-9a-f]{4,}\*/', l)]
    ops, regs = [], 0
    for l in lines:
        m = re.match(r'\s+/\*([0-9a-f]+)\*/\s+(@!?U?P\w+\s+)?([A-Z0-9_]+)', l)
        ops.append((int(m.group(1), 16), m.group(3), l))
        for r in re.findall(r'\bR(\d+)\b', l):
            regs = max(regs, int(r))
    spills = sum(1 for _, op, _ in ops if op in ('LDL', 'STL'))
    out = [f'  {len(ops)} instructions, highest register R{regs}, {spills} local-memory loads/stores (spills)']
    for addr, op, l in ops:
        m = re.search(r'BRA (0x[0-9a-f]+)', l)
        if m and op == 'BRA' and int(m.group(1), 16) < addr:
            body = [o for a, o, _ in ops if int(m.group(1), 16) <= a <= addr]
            if len(body) < 400:
                mix = Counter(body).most_common(6)
                out.append(f'  loop {int(m.group(1), 16):#x}..{addr:#x}: {len(body)} instr, ' + ', '.join(f'{k} {v}' for k, v in mix))
    return '\n'.join(out)

def extract(src, dst):
    os.makedirs(dst, exist_ok=True)
    nvd = find_nvdisasm()
    n = 0
    for p in sorted(glob.glob(f'{src}/**/*.bin', recursive=True)):
        for f in frames(open(p, 'rb').read()):
            if not f.startswith(b'NVDANVVMNVuc'):
                continue
            size, off = struct.unpack_from('<II', f, 0x4c)
            code = f[off + 8:off + size]
            code = code[:len(code) // 16 * 16]
            n += 1
            base = f'{dst}/p{n}'
            open(base + '.code', 'wb').write(code)
            print(f'p{n}: {len(code) // 16} instruction slots')
            if nvd:
                r = subprocess.run([nvd, '-b', 'SM90', base + '.code'], capture_output=True, text=True)
                open(base + '.sass', 'w').write(r.stdout + r.stderr)
                print(summary(r.stdout))
    if not n:
        print('no programs found under', src)


if __name__ == '__main__':
    if sys.argv[1] == '--summary':
        print(summary(open(sys.argv[2]).read()))
    else:
        extract(sys.argv[1], sys.argv[2])
