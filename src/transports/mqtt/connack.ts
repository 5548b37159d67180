// CONNACK return codes (MQTT 3.1.1 §3.2.2.3): the one definition every MQTT session uses.
export const CONNACK = {
  accepted: 0,
  unacceptableProtocolVersion: 1,
  identifierRejected: 2,
  serverUnavailable: 3,
  notAuthorized: 5,
} as const;
