// ThingsBoard device API topics (v1). Requests and replies are the prefix plus an id;
// the subscription filters are the response prefixes plus "+". topics-v2.ts has the
// short forms under the same names; the build picks one (TB_TOPICS).

export const TELEMETRY_TOPIC = "v1/devices/me/telemetry";
export const ATTRIBUTES_TOPIC = "v1/devices/me/attributes";
export const ATTRIBUTE_REQUEST = "v1/devices/me/attributes/request/";
export const ATTRIBUTE_RESPONSE = "v1/devices/me/attributes/response/";
export const RPC_REQUEST = "v1/devices/me/rpc/request/";
export const RPC_RESPONSE = "v1/devices/me/rpc/response/";
export const CLAIM_TOPIC = "v1/devices/me/claim";
