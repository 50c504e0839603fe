import assert from "node:assert/strict";
import mqttPacket from "mqtt-packet";

/** What mqtt-packet (the codec behind mqtt.js) reads from bytes the firmware wrote: exactly one packet. */
export function parsedByMqttPacket(encoded: Uint8Array): mqttPacket.Packet {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const packets: mqttPacket.Packet[] = [];
  parser.on("packet", (p) => packets.push(p));
  parser.on("error", (e) => assert.fail("mqtt-packet rejects the firmware's bytes: " + e.message));
  parser.parse(Buffer.from(encoded));
  assert.equal(packets.length, 1);
  return packets[0];
}
