// Installs what `npm run bench` needs beyond the root devDependencies: onnxruntime-node (the
// native peer, 288 MB), in the nested project bench/peers, so that `npm install` of this
// project does not fetch it. Runs `npm ci` there only when the installed version differs from
// the lock file. onnxruntime-node's install script would download CUDA files from NuGet on
// Linux x64: npm 11 skips it (allowScripts in bench/peers/package.json), npm 10 is told to
// (ONNXRUNTIME_NODE_INSTALL=skip, read by that script); its CPU binding ships in the package.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const dir = 'bench/peers';
const lock = JSON.parse(readFileSync(`${dir}/package-lock.json`, 'utf8'));
const want = lock.packages['node_modules/onnxruntime-node'].version;
const installed = `${dir}/node_modules/onnxruntime-node/package.json`;
const have = existsSync(installed) ? JSON.parse(readFileSync(installed, 'utf8')).version : null;
if (have !== want) {
  console.log(`setup-bench: installing onnxruntime-node@${want} into ${dir}`);
  const npm = process.env.npm_execpath;
  const [cmd, args] = npm && npm.endsWith('.js') ? [process.execPath, [npm]] : ['npm', []];
  execFileSync(cmd, [...args, 'ci', '--prefix', dir, '--no-audit', '--no-fund'], {
    stdio: 'inherit',
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
  });
}
