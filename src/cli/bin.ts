#!/usr/bin/env node
// The `imagic` executable. `--version` is answered without loading libtorch; otherwise it loads the
// command line, and an addon that cannot load (no libtorch, another version or C++ ABI) becomes the
// engine's one-paragraph explanation instead of a stack trace.
import { VERSION } from '../version.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${VERSION}\n`);
} else {
  try {
    await import('./main.js');
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}
