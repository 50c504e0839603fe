// ThingsBoard device API topics, v2 short forms (in ThingsBoard's MqttTopics.java, not
// in its docs): fewer bytes per message. Same names as topics.ts; the build picks one
// (TB_TOPICS). Claiming has no short form.

export const TELEMETRY_TOPIC = "v2/t";
export const ATTRIBUTES_TOPIC = "v2/a";
export const ATTRIBUTE_REQUEST = "v2/a/req/";
export const ATTRIBUTE_RESPONSE = "v2/a/res/";
export const RPC_REQUEST = "v2/r/req/";
export const RPC_RESPONSE = "v2/r/res/";
export const CLAIM_TOPIC = "v1/devices/me/claim";
