// MQTT 3.1.1 client codec: encodes only what a client sends (CONNECT, PUBLISH, SUBSCRIBE;
// PUBACK, PINGREQ and DISCONNECT are fixed bytes the session writes itself, 3.4, 3.12,
// 3.14) and decodes only what a server sends (CONNACK,
// PUBLISH, PUBACK, SUBACK, UNSUBACK, PINGRESP). Pure, no I/O. Section numbers refer to
// the OASIS MQTT Version 3.1.1 specification. The tests cross-check it with mqtt-packet.

import { utf8Decode, utf8Encode } from "../util/utf8";

// Control packet types (2.2.1). Plain constants so the bundler inlines them.
export const CONNACK = 2;
export const PUBLISH = 3;
export const PUBACK = 4;
export const SUBACK = 9;
export const PINGRESP = 13;
export const PINGREQ = 12;
export const DISCONNECT = 14;

/** Everything a server may send, in one shape: fewer objects and property names on the device. */
export interface ServerPacket {
  /** Control packet type (2.2.1). */
  type: number;
  /** CONNACK: the return code; SUBACK: 0x80 when the server refused any filter, else 0. */
  code: number;
  /** PUBLISH (0 for QoS 0), PUBACK, SUBACK, UNSUBACK: the packet id. */
  id: number;
  /** PUBLISH only ("" otherwise). */
  topic: string;
  /** PUBLISH only: a copy, the decoder's buffer is reused. */
  payload: Uint8Array | null;
  qos: number;
}

/** A packet with its fixed header (2.2) written; the body starts at length - bodyLength. */
function frame(firstByte: number, bodyLength: number): Uint8Array {
  let headerLength = 2;
  for (let rest = bodyLength; rest > 127; rest = Math.floor(rest / 128)) headerLength++;
  const bytes = new Uint8Array(headerLength + bodyLength);
  bytes[0] = firstByte;
  // Remaining length (2.2.3): 7 bits a byte, least significant first.
  for (let i = 1, rest = bodyLength; i < headerLength; i++, rest = Math.floor(rest / 128)) {
    bytes[i] = (rest % 128) | (i < headerLength - 1 ? 128 : 0);
  }
  return bytes;
}

function putUint16(bytes: Uint8Array, offset: number, value: number): number {
  bytes[offset] = value >> 8;
  bytes[offset + 1] = value;
  return offset + 2;
}

/** A length-prefixed UTF-8 string (1.5.3), already encoded. */
function putString(bytes: Uint8Array, offset: number, text: Uint8Array): number {
  bytes.set(text, putUint16(bytes, offset, text.length));
  return offset + 2 + text.length;
}

/**
 * CONNECT (3.1) with a clean session and no password: ThingsBoard takes the access token
 * (or "provision") as the user name and nothing else (null: no user name).
 */
export function encodeConnect(clientId: string, username: string | null, keepAliveS: number): Uint8Array {
  const id = utf8Encode(clientId);
  const user = username === null ? null : utf8Encode(username);
  const bodyLength = 12 + id.length + (user === null ? 0 : 2 + user.length);
  const bytes = frame(0x10, bodyLength);
  const offset0 = bytes.length - bodyLength;
  // Protocol name "MQTT", level 4 (3.1.1), flags: username, clean session.
  bytes.set([0, 4, 77, 81, 84, 84, 4, user === null ? 0x02 : 0x82], offset0);
  const offset = putString(bytes, putUint16(bytes, offset0 + 8, keepAliveS), id);
  if (user !== null) putString(bytes, offset, user);
  return bytes;
}

/** PUBLISH (3.3) at QoS 0 or 1, never retained; `packetId` is ignored for QoS 0. */
export function encodePublish(topic: string, payload: Uint8Array, qos: number, packetId: number, dup: boolean): Uint8Array {
  const name = utf8Encode(topic);
  const bodyLength = 2 + name.length + (qos > 0 ? 2 : 0) + payload.length;
  const bytes = frame(0x30 | (dup && qos > 0 ? 0x08 : 0) | (qos > 0 ? 0x02 : 0), bodyLength);
  let offset = putString(bytes, bytes.length - bodyLength, name);
  if (qos > 0) offset = putUint16(bytes, offset, packetId);
  bytes.set(payload, offset);
  return bytes;
}

/**
 * SUBSCRIBE (3.8): fixed-header flags 0010, QoS 1 requested for every filter: the device
 * subscribes only to ThingsBoard's messages for it, none of which it may miss.
 */
export function encodeSubscribe(packetId: number, filters: string[]): Uint8Array {
  const names: Uint8Array[] = [];
  let bodyLength = 2;
  for (let i = 0; i < filters.length; i++) {
    names.push(utf8Encode(filters[i]));
    bodyLength += 3 + names[i].length;
  }
  const bytes = frame(0x82, bodyLength);
  let offset = putUint16(bytes, bytes.length - bodyLength, packetId);
  for (let i = 0; i < names.length; i++) {
    offset = putString(bytes, offset, names[i]);
    bytes[offset++] = 1;
  }
  return bytes;
}

/**
 * Framing without state (the caller keeps what is not decoded yet: MqttSession): the length
 * of the packet at the front of bytes[start..end), fixed header included, or 0 while it is
 * incomplete. Throws an Error naming the problem on a malformed remaining length or a
 * packet over `maxBytes`; the caller closes the connection, since the stream can no longer
 * be framed. Functions rather than a decoder object: on Espruino a class and its instance
 * cost JsVars for the whole run.
 */
export function packetLength(bytes: Uint8Array, start: number, end: number, maxBytes: number): number {
  let index = start + 1;
  // Remaining length (2.2.3): at most four bytes.
  let length = 0;
  let digit = 128;
  for (let multiplier = 1; digit & 128; multiplier *= 128) {
    if (index >= end) return 0;
    if (index > start + 4) throw new Error("remaining length over 4 bytes");
    digit = bytes[index++];
    length += (digit & 127) * multiplier;
  }
  const total = index - start + length;
  if (total > maxBytes) throw new Error("packet of " + total + " B over the " + maxBytes + " B limit");
  return end - start < total ? 0 : total;
}

/** Decodes the whole packet of `total` bytes (packetLength's) at bytes[start] (2.2, 3.x); throws an Error naming what is wrong. */
export function decodePacket(bytes: Uint8Array, start: number, total: number): ServerPacket {
  const end = start + total;
  const firstByte = bytes[start];
  // The body follows the remaining length, whose bytes have the top bit set but the last.
  while (bytes[++start] & 128);
  start++;
  const type = firstByte >> 4;
  const flags = firstByte & 15;
  const length = end - start;
  const id = length >= 2 ? (bytes[start] << 8) | bytes[start + 1] : 0;
  const packet: ServerPacket = { type: type, code: 0, id: id, topic: "", payload: null, qos: 0 };
  if (type === PUBLISH) {
    const qos = (flags >> 1) & 3;
    // id holds the topic length here.
    let offset = start + 2 + id;
    if (qos > 1 || offset + qos * 2 > end) throw new Error(qos > 1 ? "PUBLISH with QoS " + qos : "PUBLISH topic past the end");
    const topic = utf8Decode(bytes, start + 2, offset);
    if (topic === null) throw new Error("PUBLISH topic not UTF-8");
    packet.topic = topic;
    packet.qos = qos;
    packet.id = 0;
    if (qos > 0) {
      packet.id = (bytes[offset] << 8) | bytes[offset + 1];
      if (packet.id === 0) throw new Error("PUBLISH with packet id 0");
      offset += 2;
    }
    packet.payload = bytes.slice(offset, end);
    return packet;
  }
  // The other server packets have fixed flags 0 and a fixed body length (SUBACK: 3 or more).
  const expected = type === CONNACK || type === PUBACK || type === 11 ? 2 : type === PINGRESP ? 0 : type === SUBACK ? -1 : -2;
  if (expected === -2) throw new Error("unexpected packet type " + type);
  if (flags !== 0 || (expected >= 0 ? length !== expected : length < 3)) throw new Error("packet type " + type + ": bad flags or length " + length);
  if (type === CONNACK) {
    if (bytes[start] > 1) throw new Error("CONNACK flags " + bytes[start]);
    packet.code = bytes[start + 1];
  }
  for (let i = start + 2; type === SUBACK && i < end; i++) {
    if (bytes[i] > 2 && bytes[i] !== 0x80) throw new Error("SUBACK code " + bytes[i]);
    if (bytes[i] === 0x80) packet.code = 0x80;
  }
  return packet;
}
