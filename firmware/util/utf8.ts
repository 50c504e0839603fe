// UTF-8 without TextEncoder/TextDecoder, which Espruino lacks.

/** Number of bytes `text` takes as UTF-8 (surrogate pairs count as one 4-byte char). */
export function utf8Length(text: string): number {
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) length += 1;
    else if (code < 0x800) length += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      length += 4;
      i++;
    } else length += 3;
  }
  return length;
}

/** Writes `text` as UTF-8 into `target` at `offset`; returns the offset after it. */
export function utf8Write(text: string, target: Uint8Array, offset: number): number {
  for (let i = 0; i < text.length; i++) {
    let code = text.charCodeAt(i);
    if (code < 0x80) {
      target[offset++] = code;
    } else if (code < 0x800) {
      target[offset++] = 0xc0 | (code >> 6);
      target[offset++] = 0x80 | (code & 0x3f);
    } else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(++i);
      code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
      target[offset++] = 0xf0 | (code >> 18);
      target[offset++] = 0x80 | ((code >> 12) & 0x3f);
      target[offset++] = 0x80 | ((code >> 6) & 0x3f);
      target[offset++] = 0x80 | (code & 0x3f);
    } else {
      target[offset++] = 0xe0 | (code >> 12);
      target[offset++] = 0x80 | ((code >> 6) & 0x3f);
      target[offset++] = 0x80 | (code & 0x3f);
    }
  }
  return offset;
}

export function utf8Encode(text: string): Uint8Array {
  const bytes = new Uint8Array(utf8Length(text));
  utf8Write(text, bytes, 0);
  return bytes;
}

/** Decodes UTF-8; returns null on a malformed sequence so callers can reject the packet. */
export function utf8Decode(bytes: Uint8Array, start: number, end: number): string | null {
  let text = "";
  let i = start;
  while (i < end) {
    const b0 = bytes[i++];
    let code: number;
    let extra: number;
    if (b0 < 0x80) {
      text += String.fromCharCode(b0);
      continue;
    } else if ((b0 & 0xe0) === 0xc0) {
      code = b0 & 0x1f;
      extra = 1;
    } else if ((b0 & 0xf0) === 0xe0) {
      code = b0 & 0x0f;
      extra = 2;
    } else if ((b0 & 0xf8) === 0xf0) {
      code = b0 & 0x07;
      extra = 3;
    } else return null;
    if (i + extra > end) return null;
    for (let k = 0; k < extra; k++) {
      const b = bytes[i++];
      if ((b & 0xc0) !== 0x80) return null;
      code = (code << 6) | (b & 0x3f);
    }
    if (code >= 0x10000) {
      code -= 0x10000;
      text += String.fromCharCode(0xd800 + (code >> 10), 0xdc00 + (code & 0x3ff));
    } else {
      text += String.fromCharCode(code);
    }
  }
  return text;
}
