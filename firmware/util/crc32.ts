// CRC-32 (IEEE 802.3: zlib's, and ThingsBoard's "CRC32"), fed a part at a time, for runtimes
// without a native one (Moddable). Bitwise, no 1 KB table: it runs once per update.

/** The CRC of what was fed so far and `bytes`: start with 0, pass each result to the next call. */
export function crc32Update(crc: number, bytes: Uint8Array): number {
  let c = ~crc;
  for (let i = 0; i < bytes.length; i++) {
    c ^= bytes[i];
    for (let bit = 0; bit < 8; bit++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
