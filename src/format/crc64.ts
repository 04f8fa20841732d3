/**
 * CRC-64/GO-ISO, Go's `crc64.MakeTable(crc64.ISO)` (reflected, poly 0xD800000000000000, init and
 * final xor all ones): the LTX file checksum (superfly/ltx decoder.go). Check value: "123456789" →
 * 0xb90956c775a41001. Computed on two uint32 halves so the hot loop never touches bigint.
 */
const HI = new Uint32Array(256);
const LO = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let hi = 0;
  let lo = i;
  for (let k = 0; k < 8; k++) {
    const carry = lo & 1;
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
    hi = hi >>> 1;
    if (carry) hi = (hi ^ 0xd8000000) >>> 0;
  }
  HI[i] = hi;
  LO[i] = lo;
}

export class Crc64 {
  // Kept complemented between updates, as Go's Update does on entry and exit.
  private hi = 0xffffffff;
  private lo = 0xffffffff;

  update(data: Uint8Array): this {
    let hi = this.hi;
    let lo = this.lo;
    for (let i = 0; i < data.length; i++) {
      const idx = (lo ^ data[i]!) & 0xff;
      lo = ((lo >>> 8) | ((hi & 0xff) << 24)) ^ LO[idx]!;
      hi = (hi >>> 8) ^ HI[idx]!;
    }
    this.hi = hi >>> 0;
    this.lo = lo >>> 0;
    return this;
  }

  digest(): bigint {
    return (BigInt((~this.hi) >>> 0) << 32n) | BigInt((~this.lo) >>> 0);
  }
}

export function crc64(data: Uint8Array): bigint {
  return new Crc64().update(data).digest();
}
