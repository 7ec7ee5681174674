// Where test fixtures live: tests/fixtures/ in the source tree (tests run from dist/tests/).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root, from src (tests/) or compiled (dist/tests/) code. */
export const repoRoot = path.basename(path.dirname(here)) === 'dist' ? path.resolve(here, '..', '..') : path.resolve(here, '..');

export function fixturePath(name: string): string {
  return path.join(repoRoot, 'tests', 'fixtures', name);
}

/** ../shared beside the checkout (golden references), or null where it is absent. */
export function sharedPath(...parts: string[]): string {
  return path.join(repoRoot, '..', 'shared', ...parts);
}
