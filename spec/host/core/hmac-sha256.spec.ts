// The credential cache's HMAC-SHA-256 in JavaScript must give exactly what OpenSSL gives.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { HmacSha256 } from '../../../lib/host/core/hmac-sha256.js';

describe('HmacSha256', () => {
  // RFC 4231 §4: test cases 1, 2, 6 (a 131-byte key, hashed first) and 7 (long key, long message).
  const vectors: Array<[key: Buffer, data: string, hex: string]> = [
    [Buffer.alloc(20, 0x0b), 'Hi There', 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
    [Buffer.from('Jefe'), 'what do ya want for nothing?', '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
    [Buffer.alloc(131, 0xaa), 'Test Using Larger Than Block-Size Key - Hash Key First', '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'],
    [
      Buffer.alloc(131, 0xaa),
      'This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.',
      '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
    ],
  ];
  for (const [key, data, hex] of vectors) {
    it(`RFC 4231: ${JSON.stringify(data.slice(0, 30))}…`, () => {
      assert.equal(new HmacSha256(key).digest(data).toString('hex'), hex);
    });
  }

  it('equals createHmac for any key and any message, around every block boundary', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 150 }), fc.string({ unit: 'grapheme', maxLength: 200 }), (key, message) => {
        const mac = new HmacSha256(key);
        // Twice: the precomputed pad states must not change between messages.
        for (let i = 0; i < 2; i++) assert.equal(mac.digest(message).toString('hex'), createHmac('sha256', key).update(message, 'utf8').digest('hex'));
      }),
      { numRuns: 500 },
    );
    const mac = new HmacSha256(Buffer.from('k'));
    for (let n = 0; n < 200; n++) {
      const message = 'x'.repeat(n);
      assert.equal(mac.digest(message).toString('hex'), createHmac('sha256', 'k').update(message).digest('hex'), `length ${n}`);
    }
  });
});
