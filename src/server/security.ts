// Who may talk to the server: on a loopback bind, only pages served from a loopback host name (no DNS
// rebinding) and no cross-site writes; on any other bind, also the access token (printed at start, as
// Jupyter does) on every request: `Authorization: Bearer`, `?token=`, or the cookie that `/?token=` sets.
import { timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';

export const TOKEN_COOKIE = 'imagic_token';

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function sameToken(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given), b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function guard(o: { loopback: boolean; token: string | null }): MiddlewareHandler {
  return async (c, next) => {
    const host = c.req.header('host') ?? '';
    if (o.loopback && !/^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/i.test(host)) {
      return c.json({ error: `the server answers loopback host names only, not '${host}'` }, 403);
    }
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      const origin = c.req.header('origin');
      if (origin !== undefined && origin !== 'null') {
        let originHost = '';
        try {
          originHost = new URL(origin).host;
        } catch {
          // unparsable: refused below
        }
        if (originHost !== host) return c.json({ error: `cross-site request refused (origin ${origin})` }, 403);
      } else if (origin === 'null') {
        return c.json({ error: 'cross-site request refused (origin null)' }, 403);
      }
    }
    if (o.token !== null) {
      const auth = c.req.header('authorization');
      const bearer = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined;
      const query = c.req.query('token');
      if (sameToken(query, o.token)) {
        setCookie(c, TOKEN_COOKIE, o.token, { httpOnly: true, sameSite: 'Strict', path: '/' });
      } else if (!sameToken(bearer, o.token) && !sameToken(getCookie(c, TOKEN_COOKIE), o.token)) {
        const msg = 'this server needs its access token: open the URL it printed at start (…/?token=…), or send Authorization: Bearer <token>';
        return c.req.path.startsWith('/api/') ? c.json({ error: msg }, 401) : c.text(msg, 401);
      }
    }
    await next();
  };
}
