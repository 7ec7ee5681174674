// Component configs (config.json, scheduler_config.json, model_index.json) as diffusers and
// transformers write them: read with errors that name the file, line and column; typed field access.
import { readFileSync } from 'node:fs';

/** A parsed JSON object: every field kept as written, unknown ones included. */
export type JsonObject = Record<string, unknown>;

export class ConfigError extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'ConfigError';
  }
}

/**
 * A field's expected type: 'number', 'integer', 'string', 'boolean', 'null', 'object', 'any', an
 * array of one of those ('integer[]'), or alternatives joined by '|' ('integer|integer[]', 'string|null').
 */
export type FieldType = string;
export type ConfigSchema = Record<string, FieldType>;

const sources = new WeakMap<object, string>();

/** The file a config was read from ('<config>' for one built in code). */
export function configSource(config: JsonObject): string {
  return sources.get(config) ?? '<config>';
}

/** Parses JSON text; a syntax error names `file`, the line and the column. */
export function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    if (text.trim() === '') throw new ConfigError(file, 'invalid JSON: the file is empty');
    const at = jsonErrorOffset(text);
    const before = text.slice(0, at).split('\n');
    const ch = text[at] ?? '';
    const what = at >= text.length ? 'unexpected end of file' : `unexpected ${ch < ' ' ? JSON.stringify(ch) : `'${ch}'`}`;
    throw new ConfigError(file, `invalid JSON at line ${before.length}, column ${before[before.length - 1]!.length + 1} (${what})`);
  }
}

/**
 * Where JSON.parse gives up (engines word and place that differently): a small scanner of the
 * JSON grammar that returns the offset of the first character that cannot continue the text.
 */
function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const expect = (c: string) => (text[i] === c ? i++ : fail());
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        string();
        ws();
        expect(':');
        value();
        ws();
        if (text[i] === ',') i++;
        else return void expect('}');
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else return void expect(']');
      }
    } else if (c === '"') {
      string();
    } else if (c !== undefined && /[-0-9]/.test(c)) {
      const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
      if (!m) fail();
      i += m![0].length;
    } else {
      for (const lit of ['true', 'false', 'null']) {
        if (text.startsWith(lit, i)) return void (i += lit.length);
      }
      fail();
    }
  };
  const string = () => {
    i++; // the opening quote
    while (i < text.length && text[i] !== '"') {
      if (text[i]! < ' ') fail();
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail();
          i += 4;
        } else if (text[i] === undefined || !'"\\/bfnrt'.includes(text[i]!)) fail();
      }
      i++;
    }
    expect('"');
  };
  try {
    value();
    ws();
    return i; // trailing characters after a complete value
  } catch (at) {
    if (typeof at === 'number') return at;
    throw at;
  }
}

/**
 * Reads a JSON object from `file`. Errors: a missing file, invalid JSON (with line and column),
 * a top level that is not an object, and (with a schema) a known field of the wrong type.
 */
export function readConfig(file: string, schema?: ConfigSchema): JsonObject {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(file, code === 'ENOENT' ? 'config file not found' : `cannot read: ${(e as Error).message}`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte-order mark
  const json = parseJson(text, file);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(file, `expected a JSON object, got ${describe(json)}`);
  }
  const config = json as JsonObject;
  sources.set(config, file);
  if (schema) validateConfig(config, schema);
  return config;
}

/** Wraps an object built in code as a config (for presets and tests). */
export function makeConfig(fields: JsonObject, source = '<config>'): JsonObject {
  const config = { ...fields };
  sources.set(config, source);
  return config;
}

/** Checks the fields named in `schema` that are present; lists every wrong one in one error. */
export function validateConfig(config: JsonObject, schema: ConfigSchema): void {
  const bad: string[] = [];
  for (const [key, type] of Object.entries(schema)) {
    if (!(key in config)) continue;
    if (!matches(config[key], type)) bad.push(`'${key}' should be ${type.split('|').join(' or ')}, got ${describe(config[key])}`);
  }
  if (bad.length === 1) throw new ConfigError(configSource(config), `field ${bad[0]}`);
  if (bad.length > 1) throw new ConfigError(configSource(config), `fields of the wrong type:\n  ${bad.join('\n  ')}`);
}

function matchesOne(v: unknown, t: string): boolean {
  if (t.endsWith('[]')) return Array.isArray(v) && v.every((x) => matchesOne(x, t.slice(0, -2)));
  switch (t) {
    case 'any': return true;
    case 'null': return v === null;
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'integer': return Number.isInteger(v);
    case 'string': return typeof v === 'string';
    case 'boolean': return typeof v === 'boolean';
    case 'object': return typeof v === 'object' && v !== null && !Array.isArray(v);
    default: throw new Error(`config schema: unknown type '${t}'`);
  }
}

function matches(v: unknown, type: FieldType): boolean {
  return type.split('|').some((t) => matchesOne(v, t.trim()));
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array ${JSON.stringify(v).slice(0, 60)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * A field of the type `type`, or `fallback` when it is absent or null. A present value of the
 * wrong type is an error naming the file and the field.
 *
 *   const layers = getField(config, 'layers_per_block', 'integer', 2);
 *   const heads = getField<number | number[]>(config, 'attention_head_dim', 'integer|integer[]', 8);
 */
export function getField<T>(config: JsonObject, key: string, type: FieldType, fallback: T): T;
export function getField<T>(config: JsonObject, key: string, type: FieldType): T | undefined;
export function getField<T>(config: JsonObject, key: string, type: FieldType, fallback?: T): T | undefined {
  const v = config[key];
  if (v === undefined || (v === null && !type.split('|').includes('null'))) return fallback;
  if (!matches(v, type)) {
    throw new ConfigError(configSource(config), `field '${key}' should be ${type.split('|').join(' or ')}, got ${describe(v)}`);
  }
  return v as T;
}

/** A field that must be present (and of `type`). */
export function requireField<T>(config: JsonObject, key: string, type: FieldType): T {
  const v = getField<T>(config, key, type);
  if (v === undefined) throw new ConfigError(configSource(config), `missing field '${key}' (${type})`);
  return v;
}

/** Shorthands for the common cases. */
export const cfg = {
  number: (c: JsonObject, key: string, fallback: number): number => getField(c, key, 'number', fallback),
  integer: (c: JsonObject, key: string, fallback: number): number => getField(c, key, 'integer', fallback),
  string: (c: JsonObject, key: string, fallback: string): string => getField(c, key, 'string', fallback),
  boolean: (c: JsonObject, key: string, fallback: boolean): boolean => getField(c, key, 'boolean', fallback),
  numbers: (c: JsonObject, key: string, fallback: number[]): number[] => getField(c, key, 'number[]', fallback),
  integers: (c: JsonObject, key: string, fallback: number[]): number[] => getField(c, key, 'integer[]', fallback),
  strings: (c: JsonObject, key: string, fallback: string[]): string[] => getField(c, key, 'string[]', fallback),
};
