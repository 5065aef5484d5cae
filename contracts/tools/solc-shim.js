#!/usr/bin/env node
// Standard-JSON front end for the npm `solc` package, used by py-solc-x, forge and slither
// as their `solc` binary (no native solc can be installed on our machines, SPEC §6).
//
//   solc-shim --version           -> prints the version the way native solc does
//   solc-shim [flags] < input     -> reads standard JSON, writes only the output JSON
//
// Flags other than --version are ignored: everything the compiler needs is in the
// standard JSON. Imports resolve from the project root, node_modules and the remappings'
// targets; sources given as `urls` (forge does this) are read from disk.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const solc = require(path.join(root, 'node_modules', 'solc'));

function versionText() {
  // solc.version() is like "0.8.30+commit.73712a01.Emscripten.clang"
  const v = solc.version().replace('.Emscripten.clang', '.Linux.g++');
  return `solc, the solidity compiler commandline interface\nVersion: ${v}\n`;
}

const argv = process.argv.slice(2);
if (argv.includes('--version')) {
  process.stdout.write(versionText());
  process.exit(0);
}

// Roots an import is looked up from, in order. --base-path / --include-path / --allow-paths
// (as forge and py-solc-x pass them) are honoured as extra roots.
const roots = [process.cwd(), root, path.join(root, 'node_modules')];
for (let i = 0; i < argv.length; i++) {
  if (['--base-path', '--include-path', '--allow-paths'].includes(argv[i]) && argv[i + 1]) {
    for (const p of argv[i + 1].split(',')) roots.push(path.resolve(p));
  }
}

function findImport(p) {
  const candidates = path.isAbsolute(p) ? [p] : roots.map((r) => path.join(r, p));
  for (const c of candidates) {
    try {
      return { contents: fs.readFileSync(c, 'utf8') };
    } catch (_) { /* try the next root */ }
  }
  return { error: `File not found: ${p}` };
}

let raw = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c) => { raw += c; });
process.stdin.on('end', () => {
  let input;
  try {
    input = JSON.parse(raw);
  } catch (e) {
    process.stdout.write(JSON.stringify({ errors: [{ type: 'JSONError', component: 'general',
      severity: 'error', message: `invalid standard JSON: ${e.message}`,
      formattedMessage: `invalid standard JSON: ${e.message}` }] }));
    process.exit(0);
  }
  // Sources given as file urls: inline their content.
  for (const [name, src] of Object.entries(input.sources || {})) {
    if (src.content === undefined && Array.isArray(src.urls)) {
      for (const u of src.urls) {
        const r = findImport(u.replace(/^file:\/\//, ''));
        if (r.contents !== undefined) { src.content = r.contents; delete src.urls; break; }
      }
      if (src.content === undefined) {
        const r = findImport(name);
        if (r.contents !== undefined) { src.content = r.contents; delete src.urls; }
      }
    }
  }
  process.stdout.write(solc.compile(JSON.stringify(input), { import: findImport }));
});
