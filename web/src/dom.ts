// Small DOM helpers for the page: typed element lookup, element creation, and the error region (#error).
import { isAbort } from './api.js';

/** The element with this id, checked to be of the given class (a missing id is a bug in index.html). */
export function byId<T extends Element>(id: string, type: abstract new () => T): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`#${id} is missing or not a ${type.name}`);
  return el;
}

type Child = Node | string | null | undefined | false;

/** Creates an element with attributes (set as given; `false`/undefined leaves one out) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const c of children) if (c) el.append(c);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number> = {},
  ...children: Child[]
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  for (const c of children) if (c) el.append(c);
  return el;
}

export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return typeof e === 'string' ? e : 'Something went wrong';
}

const errorBox = (): HTMLElement => byId('error', HTMLElement);

/** Shows the message in #error, replacing the previous one; an aborted request is not an error. */
export function showError(e: unknown): void {
  if (isAbort(e)) return;
  const box = errorBox();
  byId('error-text', HTMLElement).textContent = messageOf(e);
  box.classList.add('shown');
}

export function clearError(): void {
  byId('error-text', HTMLElement).textContent = '';
  errorBox().classList.remove('shown');
}

/** Runs an async action, showing any failure in #error; resolves to undefined when it failed. */
export async function attempt<T>(action: () => Promise<T>): Promise<T | undefined> {
  try {
    return await action();
  } catch (e) {
    showError(e);
    return undefined;
  }
}
