import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/file.js';
import { secretValues } from '../../src/config/secrets.js';
import { createLogger } from '../../src/log/logger.js';

describe('logger', () => {
  it('writes Litestream slog text and JSON lines', () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l) }).child({ db: '/data/app.db' });
    log.info('wal segment written', { position: 'abc/00000001:4152', sz: 4120 });
    assert.match(lines[0]!, /^time=\S+ level=INFO msg="wal segment written" db=\/data\/app\.db position=abc\/00000001:4152 sz=4120\n$/);
    const j: string[] = [];
    createLogger({ type: 'json', write: (l) => j.push(l) }).warn('x', { a: 1 });
    assert.deepEqual({ ...JSON.parse(j[0]!), time: 0 }, { time: 0, level: 'WARN', msg: 'x', a: 1 });
  });

  it('masks every configured credential, also URL-encoded, whatever message carries it', () => {
    const cfg = parseConfig(Buffer.from('dbs:\n  - path: /a.db\n    replicas:\n      - url: sftp://u:p%40ss-w0rd!@127.0.0.1:1/x\n'), { file: '/c.yml', expandEnv: false, env: {}, cwd: '/' });
    const secrets = secretValues(cfg, { AWS_SECRET_ACCESS_KEY: 'AKSECRETVALUE123' });
    assert.ok(secrets.includes('p@ss-w0rd!'), `password not found among ${secrets.length} secrets`);
    assert.ok(secrets.includes('AKSECRETVALUE123'));
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l), redact: secrets });
    log.error('auth failed', { error: 'login p@ss-w0rd! rejected; url sftp://u:p%40ss-w0rd!@h', key: 'AKSECRETVALUE123' });
    const all = lines.join('');
    assert.ok(!all.includes('p@ss-w0rd!') && !all.includes('p%40ss-w0rd!') && !all.includes('AKSECRETVALUE123'), all);
    assert.match(all, /xxxxx/);
  });
});
