// Deterministic PRNG seeded from the chip id: Espruino's Math.random is the same on
// every boot, so a fleet rebooting together would otherwise retry in lockstep.
// Shifts and xors only: Espruino has no Math.imul.

/** djb2 hash of a string to a non-zero 32-bit seed. */
export function hashString(text: string): number {
  let hash = 5381;
  for (let i = 0; i < text.length; i++) hash = ((hash << 5) + hash + text.charCodeAt(i)) | 0;
  return hash === 0 ? 1 : hash;
}

/** xorshift32: returns a function giving floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed | 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}
