import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { nullLogger } from '../../src/log/logger.js';
import { parseAddr, startMetricsServer } from '../../src/metrics/server.js';
import { rig, type Rig } from './helpers.js';

describe('addr', () => {
  it("parses Litestream's forms", () => {
    assert.deepEqual(parseAddr(':9090'), { host: undefined, port: 9090 });
    assert.deepEqual(parseAddr('127.0.0.1:9090'), { host: '127.0.0.1', port: 9090 });
    assert.deepEqual(parseAddr('[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseAddr('localhost:80'), { host: 'localhost', port: 80 });
    for (const bad of ['9090', ':', 'host:', ':99999', '::1:9090', 'a:b:9090', ':90x']) {
      assert.throws(() => parseAddr(bad), { code: 'LSINIT_ERR_CONFIG' }, bad);
    }
  });

  describe('listening', () => {
    let r: Rig;
    before(async () => {
      r = await rig('addr', `      - type: file
        path: {dir}/replica
`);
    });
    after(() => r.stop());

    it('":0" listens on every interface (reachable on 127.0.0.1)', async () => {
      const srv = await startMetricsServer({ addr: ':0', controller: r.controller, log: nullLogger });
      try {
        const res = await fetch(`http://127.0.0.1:${srv.port}/healthz`);
        assert.equal(res.status, 200);
        await res.arrayBuffer();
      } finally {
        await srv.close();
      }
    });

    it('"[::1]:0" listens on the IPv6 loopback (or, without one, fails with LSINIT_ERR_CONFIG)', async () => {
      let srv;
      try {
        srv = await startMetricsServer({ addr: '[::1]:0', controller: r.controller, log: nullLogger });
      } catch (err) {
        // A container without IPv6: the failure must still be the typed one naming the addr.
        assert.equal((err as { code?: string }).code, 'LSINIT_ERR_CONFIG');
        assert.match((err as Error).message, /\[::1\]:0.*EADDRNOTAVAIL|EAFNOSUPPORT/);
        return;
      }
      try {
        const res = await fetch(`http://[::1]:${srv.port}/metrics`);
        assert.equal(res.status, 200);
        assert.match(await res.text(), /litestream_db_size/);
      } finally {
        await srv.close();
      }
    });

    it('a port in use rejects with LSINIT_ERR_CONFIG naming the addr', async () => {
      const blocker: Server = createServer();
      await new Promise<void>((res) => blocker.listen(0, '127.0.0.1', res));
      const port = (blocker.address() as { port: number }).port;
      try {
        await assert.rejects(startMetricsServer({ addr: `127.0.0.1:${port}`, controller: r.controller, log: nullLogger }), (err: { code?: string; message?: string }) => {
          assert.equal(err.code, 'LSINIT_ERR_CONFIG');
          assert.match(err.message ?? '', new RegExp(`127\\.0\\.0\\.1:${port}.*EADDRINUSE`));
          return true;
        });
      } finally {
        await new Promise((res) => blocker.close(res));
      }
    });
  });
});
