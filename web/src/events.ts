// The server's events (GET /api/events, server-sent): one listener per ServerEvent type, with a note
// on reconnects so that the page can re-fetch what it may have missed.
import type { ServerEvent } from '../../src/server/api.js';

type EventOf<T extends ServerEvent['type']> = Extract<ServerEvent, { type: T }>;

export interface EventHandlers {
  session(e: EventOf<'session'>): void;
  step(e: EventOf<'step'>): void;
  deleted(e: EventOf<'deleted'>): void;
  status(e: EventOf<'status'>): void;
  /** The stream came back after a drop: events may have been missed. */
  reconnected(): void;
  /** The stream is up (true) or down and retrying (false). */
  connection(up: boolean): void;
}

const RETRY_MS = 3000;

export function connectEvents(handlers: EventHandlers): void {
  let everOpened = false;
  const connect = (): void => {
    const source = new EventSource('/api/events');
    const listen = <T extends ServerEvent['type']>(type: T, fn: (e: EventOf<T>) => void): void => {
      source.addEventListener(type, (ev) => {
        if (!(ev instanceof MessageEvent) || typeof ev.data !== 'string') return;
        let data: unknown;
        try {
          data = JSON.parse(ev.data);
        } catch {
          console.warn(`imagic: a ${type} event with data that is not JSON`, ev.data);
          return;
        }
        fn(data as EventOf<T>);
      });
    };
    listen('session', (e) => handlers.session(e));
    listen('step', (e) => handlers.step(e));
    listen('deleted', (e) => handlers.deleted(e));
    listen('status', (e) => handlers.status(e));
    source.addEventListener('open', () => {
      handlers.connection(true);
      if (everOpened) handlers.reconnected();
      everOpened = true;
    });
    source.addEventListener('error', () => {
      handlers.connection(false);
      // EventSource retries by itself unless the server answered with an error status: then it closes
      if (source.readyState === EventSource.CLOSED) window.setTimeout(connect, RETRY_MS);
    });
  };
  connect();
}
