// A child process of `imagic batch --jobs N`: runs the rows it is sent, one at a time, and answers each
// with its result (the parent alone writes results.jsonl).
import type { RowJob } from '../../queue/job.js';
import { runRow, type RowEnv } from './run-row.js';

if (!process.send) {
  process.stderr.write('this file is started by `imagic batch --jobs N`, not by hand\n');
  process.exit(2);
}

process.on('message', (m: { job: RowJob; env: RowEnv }) => {
  void runRow(m.job, m.env).then(
    (result) => process.send!({ key: m.job.row.key, result }),
    (e: Error) => process.send!({ key: m.job.row.key, error: e.message }),
  );
});
process.on('disconnect', () => process.exit(0));
