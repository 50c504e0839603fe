// MQTT 3.1.1 packet codec: pure functions and a streaming decoder, no I/O.
// Section numbers refer to the OASIS MQTT Version 3.1.1 specification.

import { utf8Decode, utf8Length, utf8Write } from "../util/utf8";

// Control packet types (2.2.1). Plain constants so the bundler inlines them.
export const CONNECT = 1;
export const CONNACK = 2;
export const PUBLISH = 3;
export const PUBACK = 4;
export const SUBSCRIBE = 8;
export const SUBACK = 9;
export const UNSUBSCRIBE = 10;
export const UNSUBACK = 11;
export const PINGREQ = 12;
export const PINGRESP = 13;
export const DISCONNECT = 14;

export interface ConnackPacket {
  type: 2;
  sessionPresent: boolean;
  returnCode: number;
}
export interface PublishPacket {
  type: 3;
  topic: string;
  payload: Uint8Array;
  qos: number;
  dup: boolean;
  retain: boolean;
  /** 0 for QoS 0. */
  packetId: number;
}
export interface AckPacket {
  type: 4 | 11;
  packetId: number;
}
export interface SubackPacket {
  type: 9;
  packetId: number;
  /** One per requested filter: 0, 1, 2 or 0x80 (failure). */
  granted: number[];
}
export interface PingrespPacket {
  type: 13;
}
/** Everything a server may send to a client. */
export type ServerPacket = ConnackPacket | PublishPacket | AckPacket | SubackPacket | PingrespPacket;

export interface ConnectOptions {
  clientId: string;
  username: string | null;
  password: string | null;
  keepAliveS: number;
  cleanSession: boolean;
}

/** Bytes the remaining-length field takes (2.2.3); at most 4. */
export function remainingLengthSize(length: number): number {
  if (length < 128) return 1;
  if (length < 16384) return 2;
  if (length < 2097152) return 3;
  if (length < 268435456) return 4;
  throw new Error("mqtt: packet too large to encode (" + length + " bytes)");
}

/** Writes the remaining-length field (2.2.3) at `offset`; returns the offset after it. */
export function writeRemainingLength(target: Uint8Array, offset: number, length: number): number {
  do {
    let digit = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) digit |= 0x80;
    target[offset++] = digit;
  } while (length > 0);
  return offset;
}

/** Allocates a packet with its fixed header written; returns it and the body offset. */
function allocatePacket(firstByte: number, remainingLength: number): { bytes: Uint8Array; offset: number } {
  const bytes = new Uint8Array(1 + remainingLengthSize(remainingLength) + remainingLength);
  bytes[0] = firstByte;
  return { bytes: bytes, offset: writeRemainingLength(bytes, 1, remainingLength) };
}

function writeUint16(bytes: Uint8Array, offset: number, value: number): number {
  bytes[offset] = (value >> 8) & 0xff;
  bytes[offset + 1] = value & 0xff;
  return offset + 2;
}

function writeString(bytes: Uint8Array, offset: number, text: string, byteLength: number): number {
  offset = writeUint16(bytes, offset, byteLength);
  return utf8Write(text, bytes, offset);
}

function checkStringLength(what: string, byteLength: number): void {
  if (byteLength > 65535) throw new Error("mqtt: " + what + " is longer than 65535 bytes");
}

function checkPacketId(packetId: number): void {
  if (!(packetId >= 1 && packetId <= 65535)) throw new Error("mqtt: packet id " + packetId + " is outside 1..65535");
}

/** CONNECT (3.1). */
export function encodeConnect(options: ConnectOptions): Uint8Array {
  const clientIdLength = utf8Length(options.clientId);
  const usernameLength = options.username === null ? 0 : utf8Length(options.username);
  const passwordLength = options.password === null ? 0 : utf8Length(options.password);
  checkStringLength("client id", clientIdLength);
  checkStringLength("username", usernameLength);
  checkStringLength("password", passwordLength);
  if (options.password !== null && options.username === null) {
    throw new Error("mqtt: a password needs a username (3.1.2.9)");
  }
  let remaining = 10 + 2 + clientIdLength;
  if (options.username !== null) remaining += 2 + usernameLength;
  if (options.password !== null) remaining += 2 + passwordLength;
  const packet = allocatePacket(CONNECT << 4, remaining);
  const bytes = packet.bytes;
  let offset = writeString(bytes, packet.offset, "MQTT", 4);
  bytes[offset++] = 4; // protocol level 3.1.1
  let flags = 0;
  if (options.username !== null) flags |= 0x80;
  if (options.password !== null) flags |= 0x40;
  if (options.cleanSession) flags |= 0x02;
  bytes[offset++] = flags;
  offset = writeUint16(bytes, offset, options.keepAliveS);
  offset = writeString(bytes, offset, options.clientId, clientIdLength);
  if (options.username !== null) offset = writeString(bytes, offset, options.username, usernameLength);
  if (options.password !== null) writeString(bytes, offset, options.password, passwordLength);
  return bytes;
}

/** PUBLISH (3.3). `packetId` is ignored for QoS 0. */
export function encodePublish(
  topic: string,
  payload: Uint8Array,
  qos: number,
  packetId: number,
  dup: boolean,
  retain: boolean
): Uint8Array {
  if (qos !== 0 && qos !== 1) throw new Error("mqtt: only QoS 0 and 1 are supported, not " + qos);
  const topicLength = utf8Length(topic);
  checkStringLength("topic", topicLength);
  if (topicLength === 0) throw new Error("mqtt: empty topic");
  if (qos > 0) checkPacketId(packetId);
  const remaining = 2 + topicLength + (qos > 0 ? 2 : 0) + payload.length;
  const firstByte = (PUBLISH << 4) | (dup && qos > 0 ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0);
  const packet = allocatePacket(firstByte, remaining);
  let offset = writeString(packet.bytes, packet.offset, topic, topicLength);
  if (qos > 0) offset = writeUint16(packet.bytes, offset, packetId);
  packet.bytes.set(payload, offset);
  return packet.bytes;
}

/** PUBACK (3.4). */
export function encodePuback(packetId: number): Uint8Array {
  checkPacketId(packetId);
  const packet = allocatePacket(PUBACK << 4, 2);
  writeUint16(packet.bytes, packet.offset, packetId);
  return packet.bytes;
}

/** SUBSCRIBE (3.8); the fixed-header flags must be 0010. */
export function encodeSubscribe(packetId: number, filters: string[], qos: number[]): Uint8Array {
  checkPacketId(packetId);
  if (filters.length === 0) throw new Error("mqtt: SUBSCRIBE needs at least one filter (3.8.3)");
  let remaining = 2;
  const lengths: number[] = [];
  for (let i = 0; i < filters.length; i++) {
    const length = utf8Length(filters[i]);
    checkStringLength("topic filter", length);
    lengths.push(length);
    remaining += 2 + length + 1;
  }
  const packet = allocatePacket((SUBSCRIBE << 4) | 0x02, remaining);
  let offset = writeUint16(packet.bytes, packet.offset, packetId);
  for (let i = 0; i < filters.length; i++) {
    offset = writeString(packet.bytes, offset, filters[i], lengths[i]);
    packet.bytes[offset++] = qos[i] & 0x03;
  }
  return packet.bytes;
}

/** UNSUBSCRIBE (3.10); the fixed-header flags must be 0010. */
export function encodeUnsubscribe(packetId: number, filters: string[]): Uint8Array {
  checkPacketId(packetId);
  if (filters.length === 0) throw new Error("mqtt: UNSUBSCRIBE needs at least one filter (3.10.3)");
  let remaining = 2;
  const lengths: number[] = [];
  for (let i = 0; i < filters.length; i++) {
    const length = utf8Length(filters[i]);
    checkStringLength("topic filter", length);
    lengths.push(length);
    remaining += 2 + length;
  }
  const packet = allocatePacket((UNSUBSCRIBE << 4) | 0x02, remaining);
  let offset = writeUint16(packet.bytes, packet.offset, packetId);
  for (let i = 0; i < filters.length; i++) offset = writeString(packet.bytes, offset, filters[i], lengths[i]);
  return packet.bytes;
}

/** PINGREQ (3.12). */
export function encodePingreq(): Uint8Array {
  return allocatePacket(PINGREQ << 4, 0).bytes;
}

/** DISCONNECT (3.14). */
export function encodeDisconnect(): Uint8Array {
  return allocatePacket(DISCONNECT << 4, 0).bytes;
}

/** Human-readable meaning of a CONNACK return code (3.2.2.3), as ThingsBoard uses them. */
export function connackReason(returnCode: number): string {
  if (returnCode === 1) return "unacceptable protocol version (CONNACK 1)";
  if (returnCode === 2) return "client id rejected (CONNACK 2)";
  if (returnCode === 3) return "server unavailable or connect rate limit hit (CONNACK 3)";
  if (returnCode === 4) return "bad user name or password (CONNACK 4): check the access token";
  if (returnCode === 5) return "not authorized (CONNACK 5): the access token is wrong or unknown to the server";
  return "refused with unknown code " + returnCode;
}

/**
 * Streaming decoder: push socket reads in any split, take whole packets out.
 * `next()` throws an Error naming the problem on a malformed packet; the caller closes
 * the connection, since the stream can no longer be framed.
 */
export class PacketDecoder {
  private buffer: Uint8Array;
  private start = 0;
  private end = 0;
  private readonly maxPacketBytes: number;

  constructor(maxPacketBytes: number) {
    this.maxPacketBytes = maxPacketBytes;
    this.buffer = new Uint8Array(256);
  }

  /** Drops buffered bytes, e.g. when a new connection starts. */
  reset(): void {
    this.start = 0;
    this.end = 0;
  }

  /** Bytes received but not yet returned as a packet. */
  pending(): number {
    return this.end - this.start;
  }

  push(chunk: Uint8Array): void {
    const needed = this.end - this.start + chunk.length;
    if (this.end + chunk.length > this.buffer.length) {
      if (needed <= this.buffer.length) {
        // Compact in place instead of growing.
        this.buffer.set(this.buffer.subarray(this.start, this.end), 0);
      } else {
        let size = this.buffer.length * 2;
        while (size < needed) size *= 2;
        const grown = new Uint8Array(size);
        grown.set(this.buffer.subarray(this.start, this.end), 0);
        this.buffer = grown;
      }
      this.end -= this.start;
      this.start = 0;
    }
    this.buffer.set(chunk, this.end);
    this.end += chunk.length;
  }

  next(): ServerPacket | null {
    const bytes = this.buffer;
    const available = this.end - this.start;
    if (available < 2) return null;
    // Remaining length (2.2.3): at most four bytes.
    let remaining = 0;
    let multiplier = 1;
    let index = this.start + 1;
    let digit: number;
    do {
      if (index - this.start > 4) throw new Error("remaining length longer than 4 bytes");
      if (index >= this.end) return null;
      digit = bytes[index++];
      remaining += (digit & 0x7f) * multiplier;
      multiplier *= 128;
    } while ((digit & 0x80) !== 0);
    const total = index - this.start + remaining;
    if (total > this.maxPacketBytes) {
      throw new Error("packet of " + total + " bytes exceeds the " + this.maxPacketBytes + "-byte limit");
    }
    if (available < total) return null;
    const firstByte = bytes[this.start];
    const bodyStart = index;
    const bodyEnd = index + remaining;
    this.start += total;
    if (this.start === this.end) {
      this.start = 0;
      this.end = 0;
    }
    return decodeBody(firstByte, bytes, bodyStart, bodyEnd);
  }
}

function readUint16(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] << 8) | bytes[offset + 1];
}

function expectFlags(firstByte: number, flags: number, name: string): void {
  if ((firstByte & 0x0f) !== flags) throw new Error(name + " with reserved flags " + (firstByte & 0x0f));
}

function expectLength(length: number, expected: number, name: string): void {
  if (length !== expected) throw new Error(name + " with remaining length " + length + ", expected " + expected);
}

/** Decodes one whole packet body. The buffer is reused later, so payloads are copied. */
function decodeBody(firstByte: number, bytes: Uint8Array, start: number, end: number): ServerPacket {
  const type = firstByte >> 4;
  const length = end - start;
  if (type === PUBLISH) {
    const qos = (firstByte >> 1) & 0x03;
    if (qos > 1) throw new Error("PUBLISH with QoS " + qos + " (only 0 and 1 are subscribed)");
    if (length < 2) throw new Error("PUBLISH too short for its topic length");
    const topicLength = readUint16(bytes, start);
    let offset = start + 2 + topicLength;
    if (offset + (qos > 0 ? 2 : 0) > end) throw new Error("PUBLISH topic runs past the packet end");
    const topic = utf8Decode(bytes, start + 2, offset);
    if (topic === null) throw new Error("PUBLISH topic is not valid UTF-8");
    let packetId = 0;
    if (qos > 0) {
      packetId = readUint16(bytes, offset);
      if (packetId === 0) throw new Error("PUBLISH QoS 1 with packet id 0");
      offset += 2;
    }
    return {
      type: PUBLISH,
      topic: topic,
      payload: bytes.slice(offset, end),
      qos: qos,
      dup: (firstByte & 0x08) !== 0,
      retain: (firstByte & 0x01) !== 0,
      packetId: packetId,
    };
  }
  if (type === CONNACK) {
    expectFlags(firstByte, 0, "CONNACK");
    expectLength(length, 2, "CONNACK");
    if ((bytes[start] & 0xfe) !== 0) throw new Error("CONNACK with reserved acknowledge flags set");
    return { type: CONNACK, sessionPresent: (bytes[start] & 1) === 1, returnCode: bytes[start + 1] };
  }
  if (type === PUBACK || type === UNSUBACK) {
    expectFlags(firstByte, 0, type === PUBACK ? "PUBACK" : "UNSUBACK");
    expectLength(length, 2, type === PUBACK ? "PUBACK" : "UNSUBACK");
    return { type: type, packetId: readUint16(bytes, start) };
  }
  if (type === SUBACK) {
    expectFlags(firstByte, 0, "SUBACK");
    if (length < 3) throw new Error("SUBACK without return codes");
    const granted: number[] = [];
    for (let i = start + 2; i < end; i++) {
      const code = bytes[i];
      if (code > 2 && code !== 0x80) throw new Error("SUBACK with invalid return code " + code);
      granted.push(code);
    }
    return { type: SUBACK, packetId: readUint16(bytes, start), granted: granted };
  }
  if (type === PINGRESP) {
    expectFlags(firstByte, 0, "PINGRESP");
    expectLength(length, 0, "PINGRESP");
    return { type: PINGRESP };
  }
  throw new Error("unexpected packet type " + type + " from the server");
}
