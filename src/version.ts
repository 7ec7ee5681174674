// The package's version, read from its package.json (one source of truth for `imagic --version`).
import { readFileSync } from 'node:fs';

/** imagic's version (semver), e.g. '0.2.0'. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
