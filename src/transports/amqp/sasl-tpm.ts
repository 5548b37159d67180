// The SASL `TPM` exchange of DPS over AMQP (device-api.md §4.4, tpm-attestation.md §10), as the
// SDKs speak it: init `0 ‖ idScope ‖ 0 ‖ registrationId ‖ 0 ‖ EK`; the service answers a 1-byte
// challenge; the device sends `0 ‖ SRK`; the service sends the authenticationKey in segments, each
// behind a control byte (0x80: more follow, the device answers `0`; 0xC0: the last), and the
// device answers the last with `0 ‖ SAS token`. Pure: bytes in, bytes out.

export interface TpmSaslInit {
  idScope: string;
  registrationId: string;
  endorsementKey: Buffer;
}

/** The init frame's fields; undefined when it does not have that shape. */
export function parseTpmInit(response: Buffer | undefined): TpmSaslInit | undefined {
  if (response?.[0] !== 0) return undefined;
  const scopeEnd = response.indexOf(0, 1);
  const idEnd = scopeEnd < 0 ? -1 : response.indexOf(0, scopeEnd + 1);
  if (scopeEnd < 2 || idEnd < scopeEnd + 2 || idEnd + 1 >= response.length) return undefined;
  return {
    idScope: response.subarray(1, scopeEnd).toString("utf8"),
    registrationId: response.subarray(scopeEnd + 1, idEnd).toString("utf8"),
    endorsementKey: Buffer.from(response.subarray(idEnd + 1)),
  };
}

/** The service's first challenge: one byte, which asks for the storage root key. */
export const ASK_FOR_SRK = Buffer.from([0]);

/** `0 ‖ payload` (the SRK, or the SAS token), as the device answers; undefined otherwise. */
export function parseTpmResponse(response: Buffer | undefined): Buffer | undefined {
  return response && response.length > 1 && response[0] === 0 ? Buffer.from(response.subarray(1)) : undefined;
}

/** Bytes of the authenticationKey a segment carries: well inside AMQP's 512-byte minimum frame. */
export const SEGMENT_BYTES = 400;

/** The authenticationKey (raw bytes) as the challenges that carry it. */
export function blobSegments(blob: Buffer, size = SEGMENT_BYTES): Buffer[] {
  const segments: Buffer[] = [];
  for (let at = 0; at < blob.length; at += size) {
    const last = at + size >= blob.length;
    segments.push(Buffer.concat([Buffer.from([last ? 0xc0 : 0x80]), blob.subarray(at, at + size)]));
  }
  return segments;
}
