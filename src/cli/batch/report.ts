// report.html of a batch: a static page that opens from disk (images by relative path, no network):
// the summary, a table of input | output(s) | text | metrics | evaluator per row with a status filter,
// and the alignment-vs-preservation plot where the metrics exist.
import path from 'node:path';
import { writeFileAtomic } from '../../io/image.js';
import type { BatchRow } from './csv.js';
import type { BatchJson } from './results.js';
import type { RowResult } from './run-row.js';

const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const fmt = (x: number | null, d = 2) => (x === null || !Number.isFinite(x) ? '' : x.toFixed(d));
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
const pct = (n: number, d: number) => (d ? `${Math.round((100 * n) / d)}%` : '');
const img = (src: string | null, alt: string) => (src ? `<img src="${esc(src.split(path.sep).join('/'))}" alt="${esc(alt)}" width="96" height="96" loading="lazy">` : '');

function plot(results: RowResult[]): string {
  const pts: { x: number; y: number; label: string; cls: string }[] = [];
  for (const r of results) {
    if (r.alignment !== null && r.preservation !== null) pts.push({ x: r.preservation, y: r.alignment, label: `${r.key}: Imagic`, cls: 'imagic' });
    for (const b of r.baselines) pts.push({ x: b.preservation, y: b.alignment, label: `${r.key}: ${b.method}`, cls: b.method.startsWith('SDEdit') ? 'sdedit' : 'ddim' });
  }
  if (pts.length === 0) return '';
  const W = 560, H = 360, L = 56, B = 40, T = 12, R = 28;
  const xs = pts.map((p) => p.x), ys = pts.map((p) => p.y);
  // 8% of the range (or 1% of the value) beyond the outermost points, so that none sits on the frame.
  const pad = (lo: number, hi: number) => {
    const m = (hi - lo) * 0.08 || Math.abs(hi) * 0.01 || 1;
    return [lo - m, hi + m] as const;
  };
  const [x0, x1] = pad(Math.min(...xs), Math.max(...xs)), [y0, y1] = pad(Math.min(...ys), Math.max(...ys));
  const sx = (x: number) => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - R);
  const sy = (y: number) => H - B - ((y - y0) / (y1 - y0 || 1)) * (H - B - T);
  const ticks = (a: number, b: number) => [0, 0.25, 0.5, 0.75, 1].map((t) => a + t * (b - a));
  return `<figure><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="alignment against preservation, one point per row and method">
<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - B - T}" class="frame"/>
${ticks(x0, x1).map((v) => `<text x="${sx(v)}" y="${H - B + 16}" text-anchor="middle">${v.toFixed(3)}</text>`).join('')}
${ticks(y0, y1).map((v) => `<text x="${L - 6}" y="${sy(v) + 4}" text-anchor="end">${v.toFixed(1)}</text>`).join('')}
<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">preservation (higher: more like the input)</text>
<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(T + H - B) / 2})">alignment (CLIP score)</text>
${pts.map((p) => `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="4" class="${p.cls}"><title>${esc(p.label)}: alignment ${p.y.toFixed(2)}, preservation ${p.x.toFixed(4)}</title></circle>`).join('\n')}
</svg><figcaption><span class="key imagic"></span> Imagic <span class="key sdedit"></span> SDEdit <span class="key ddim"></span> DDIM inversion</figcaption></figure>`;
}

export async function writeReport(outDir: string, b: BatchJson, rows: BatchRow[], results: Map<string, RowResult>, running: Set<string> = new Set()): Promise<string> {
  const done = rows.map((r) => results.get(r.key)).filter((r): r is RowResult => r !== undefined);
  const ok = done.filter((r) => r.status === 'ok');
  const withEval = ok.filter((r) => r.evaluator);
  const baselines = ok.some((r) => r.baselines.length > 0);
  const evaluator = withEval.length > 0;
  const status = (r: BatchRow) => results.get(r.key)?.status ?? (running.has(r.key) ? 'running' : 'pending');
  const counts = { ok: ok.length, failed: done.length - ok.length, pending: rows.length - done.length };
  const summary = [
    `<li><b>${rows.length}</b> rows: <b>${counts.ok}</b> done, <b>${counts.failed}</b> failed, <b>${counts.pending}</b> not yet</li>`,
    ok.some((r) => r.alignment !== null) ? `<li>Imagic: mean alignment ${fmt(mean(ok.flatMap((r) => (r.alignment === null ? [] : [r.alignment]))))}, mean preservation ${fmt(mean(ok.flatMap((r) => (r.preservation === null ? [] : [r.preservation]))), 4)}</li>` : '',
    evaluator ? `<li>Shapes-64 evaluator: edit done ${pct(withEval.filter((r) => r.evaluator!.success).length, withEval.length)}, rest preserved ${pct(withEval.filter((r) => r.evaluator!.preserved).length, withEval.length)}, both ${pct(withEval.filter((r) => r.evaluator!.success && r.evaluator!.preserved).length, withEval.length)} (of ${withEval.length})</li>` : '',
    `<li>time: ${fmt(done.reduce((a, r) => a + r.seconds, 0), 1)} s of row work${done.length ? `, ${fmt(mean(done.map((r) => r.seconds)), 1)} s per row` : ''}</li>`,
  ].join('\n');
  const attrs = (a: Record<string, string> | null) => (a ? Object.values(a).join(' ') : 'unreadable');
  const body = rows.map((row) => {
    const r = results.get(row.key);
    const st = status(row);
    return `<tr data-status="${st}"><td>${row.index + 1}</td><td><span class="badge ${st}">${st}</span></td>
<td>${img(r?.files.input ?? null, 'input')}<div class="name">${esc(row.imageName)}</div></td>
<td>${img(r?.files.output ?? null, 'Imagic')}</td>${baselines ? `<td>${img(r?.files.sdedit ?? null, 'SDEdit')}</td><td>${img(r?.files.ddim ?? null, 'DDIM inversion')}</td>` : ''}
<td>${esc(row.target)}</td><td>${r?.eta !== null && r?.eta !== undefined ? `eta ${r.eta}, ${r.seed === -1 ? 'inverted' : `seed ${r.seed}`}` : ''}</td>
<td>${fmt(r?.alignment ?? null)}</td><td>${fmt(r?.preservation ?? null, 4)}</td>
${evaluator ? `<td>${r?.evaluator ? `${r.evaluator.success ? 'edited' : 'not edited'}, ${r.evaluator.preserved ? 'rest kept' : 'rest changed'}<div class="name">${esc(attrs(r.evaluator.output as Record<string, string> | null))}</div>` : ''}</td>` : ''}
<td>${r ? fmt(r.seconds, 1) : ''}</td><td class="error">${esc(r?.error ?? '')}</td></tr>`;
  }).join('\n');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>imagic batch: ${esc(path.basename(b.csv))}</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#1a1d24}h1{font-size:20px}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #dde1e8;padding:6px 8px;text-align:left;vertical-align:top}th{background:#f2f4f8;position:sticky;top:0}
img{image-rendering:pixelated;border:1px solid #dde1e8;background:#fff}.name{color:#667;font-size:12px;max-width:140px;overflow-wrap:anywhere}
.badge{padding:1px 6px;border-radius:8px;font-size:12px}.ok{background:#dff3e4}.failed{background:#fbe0e0}.pending,.running{background:#eef}
.error{color:#a01c1c;white-space:pre-wrap;max-width:320px}.filters button{margin-right:4px}.filters button[aria-pressed=true]{font-weight:bold}
svg text{font-size:11px;fill:#445}.frame{fill:none;stroke:#99a}circle.imagic,.key.imagic{fill:#2d6cdf;background:#2d6cdf}
circle.sdedit,.key.sdedit{fill:#e07b00;background:#e07b00}circle.ddim,.key.ddim{fill:#2a9d55;background:#2a9d55}.key{display:inline-block;width:10px;height:10px;border-radius:5px;margin-left:10px}
</style></head><body>
<h1>imagic batch: ${esc(b.csv)}</h1>
<p>model ${esc(b.settings.model)}${b.settings.preset ? `, preset ${esc(b.settings.preset)}` : ''}${b.settings.baselines ? `, with SDEdit (strength ${b.settings.strength}) and DDIM inversion` : ''}; batch ${esc(b.id)}, started ${esc(b.created)}; this page written ${esc(new Date().toISOString())}</p>
<ul id="summary">${summary}</ul>
${plot(ok)}
<p class="filters" id="filters">Show: <button type="button" data-filter="all" aria-pressed="true">all</button><button type="button" data-filter="ok" aria-pressed="false">done</button><button type="button" data-filter="failed" aria-pressed="false">failed</button><button type="button" data-filter="pending" aria-pressed="false">not yet</button></p>
<table id="rows"><thead><tr><th>#</th><th>status</th><th>input</th><th>Imagic</th>${baselines ? '<th>SDEdit</th><th>DDIM inversion</th>' : ''}<th>target text</th><th>eta, noise</th><th>alignment</th><th>preservation</th>${evaluator ? '<th>evaluator</th>' : ''}<th>seconds</th><th>error</th></tr></thead>
<tbody>
${body}
</tbody></table>
<script>
for (const b of document.querySelectorAll('#filters button')) b.addEventListener('click', () => {
  for (const o of document.querySelectorAll('#filters button')) o.setAttribute('aria-pressed', String(o === b));
  const f = b.dataset.filter;
  for (const tr of document.querySelectorAll('#rows tbody tr')) tr.hidden = !(f === 'all' || tr.dataset.status === f || (f === 'pending' && tr.dataset.status === 'running'));
});
</script>
</body></html>
`;
  const file = path.join(outDir, 'report.html');
  await writeFileAtomic(file, Buffer.from(html));
  return file;
}
