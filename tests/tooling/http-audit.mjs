// Runs graphql-http's GraphQL-over-HTTP server audits against the URL given as the only
// argument, prints one line per audit and a summary, and exits non-zero when a MUST audit
// fails or a SHOULD audit warns (tests/api/limits.rs runs it against the real router).
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node http-audit.mjs <graphql url>');
  process.exit(2);
}

const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
const must = { ok: 0, total: 0 };
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  const result = await audit.fn();
  counts[result.status] += 1;
  if (audit.name.startsWith('MUST')) {
    must.total += 1;
    if (result.status === 'ok') must.ok += 1;
  }
  const reason = result.status === 'ok' ? '' : ` (${result.reason})`;
  console.log(`${result.status.padEnd(6)} ${audit.name}${reason}`);
}
console.log(
  `summary: ${must.ok}/${must.total} MUST ok, ${counts.ok} ok, ${counts.warn} warnings, ` +
    `${counts.error} errors, ${counts.notice} notices`,
);
process.exit(counts.error > 0 || counts.warn > 0 ? 1 : 0);
