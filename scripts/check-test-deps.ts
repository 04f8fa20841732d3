/** `npm test` runs this before the tests: exit 1 with a message naming what is missing (test/helpers/requirements.ts). */
import { requirementsMessage } from '../test/helpers/requirements.js';

const msg = requirementsMessage({ PATH: process.env['PATH'] ?? '', uid: process.getuid?.() ?? -1 });
if (msg) {
  process.stderr.write(msg);
  process.exitCode = 1;
}
