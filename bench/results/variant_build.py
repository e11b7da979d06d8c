# Shared by the kernel-variant scripts (kernel-v7-trials/variants-v6.py, variants-v7.py,
# kernel-v9-trials/variants-v9.py): a worktree of HEAD with main's working files copied in,
# and the build of one edited tree into /work/main/dists/<name> for `bench/gpu.mjs --dist`.
import os, shutil, subprocess

MAIN = '/work/main'
FILES = ['shaders/bsattn_fwd.wgsl', 'src/backends/webgpu/program.ts', 'src/config.ts', 'src/backends/webgpu/webgpu-backend.ts']


def worktree(path, ref=None):
    """`path` as a worktree of HEAD (created once) holding FILES as of commit `ref`, or main's
    working copies when ref is None (a variant's text edits only apply to the kernel they were
    written for)."""
    if not os.path.exists(path):
        subprocess.run(f'git worktree add -f {path} HEAD && ln -s {MAIN}/node_modules {path}/node_modules', shell=True, cwd=MAIN, check=True)
    for f in FILES:
        if ref is None:
            shutil.copy(f'{MAIN}/{f}', f'{path}/{f}')
        else:
            text = subprocess.run(['git', 'show', f'{ref}:{f}'], cwd=MAIN, check=True, capture_output=True).stdout
            open(f'{path}/{f}', 'wb').write(text)
    return path


def build(tree, name):
    """npm run build in `tree`, its dist copied to dists/<name>."""
    subprocess.run('npm run build >/dev/null 2>&1', shell=True, cwd=tree, check=True)
    shutil.rmtree(f'{MAIN}/dists/{name}', ignore_errors=True)
    shutil.copytree(f'{tree}/dist', f'{MAIN}/dists/{name}')
