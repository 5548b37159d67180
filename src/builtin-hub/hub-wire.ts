// Built-in hub response bodies: identities, twins and IoT Hub's classic error body
// (iothub-api.md §4.1, §4.3, §5).
import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import { ProvisioError, toProvisioError } from "../domain/errors.js";
import type { DeviceIdentity, HubDeviceRecord } from "../domain/hub.js";
import { closeAfterReply, sendJson } from "../http/respond.js";
import { scopesOf } from "./device-scopes.js";
import { twinPropertiesJson } from "./twin.js";

/** An identity as IoT Hub returns it, with its edge scopes filled in (device-scopes.ts). */
export const identityJson = (identity: DeviceIdentity): DeviceIdentity => ({ ...identity, ...scopesOf(identity) });

/** The service view of a twin: identity projection, tags and properties. */
export function twinJson({ identity, twin }: HubDeviceRecord): Record<string, unknown> {
  return {
    deviceId: identity.deviceId,
    etag: twin.etag,
    deviceEtag: identity.etag,
    status: identity.status,
    statusUpdateTime: identity.statusUpdatedTime,
    connectionState: identity.connectionState,
    lastActivityTime: identity.lastActivityTime,
    cloudToDeviceMessageCount: identity.cloudToDeviceMessageCount,
    authenticationType: identity.authentication.type,
    x509Thumbprint: identity.authentication.x509Thumbprint,
    modelId: "",
    version: twin.version,
    tags: twin.tags,
    properties: twinPropertiesJson(twin),
    capabilities: identity.capabilities,
    ...scopesOf(identity),
  };
}

const FALLBACK_CODES: Record<number, string> = {
  400: "ArgumentInvalid",
  401: "IotHubUnauthorizedAccess",
  404: "NotFound",
  405: "NotSupported",
  413: "MessageTooLarge",
  429: "ThrottlingException",
};

/**
 * The classic error body the Node SDK parses: `Message` = "ErrorCode:<Name>;<text>", plus the
 * `iothub-errorcode` header. Unknown errors are 500 ServerError.
 */
export function sendHubError(res: ServerResponse, err: unknown, onInternal?: (err: unknown) => void): void {
  const e = toProvisioError(err);
  if (!(err instanceof ProvisioError)) onInternal?.(err);
  const code = e.hubCode ?? FALLBACK_CODES[e.status] ?? "ServerError";
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const tracking = randomUUID().replaceAll("-", "");
  const headers: Record<string, string> = { "iothub-errorcode": code };
  if (e.status === 413) closeAfterReply(res, headers);
  sendJson(
    res,
    e.status,
    {
      Message: `ErrorCode:${code};${e.message}`,
      ExceptionMessage: `Tracking ID:${tracking}-G:0-TimeStamp:${new Date().toISOString()}`,
    },
    headers,
  );
}
