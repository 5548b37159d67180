// The enrollment flags of `az iot dps enrollment|enrollment-group create|update` (management.md
// §7.5) and the service API body they make (service-api.md §4). Pure: flags in, body out, with
// az's validation rules; the commands send it.
import { readFileSync } from "node:fs";
import { type Command, Option } from "commander";
import { isObject } from "../domain/json.js";
import { jsonFlag, type Opts, str } from "./server-options.js";

export type EnrollmentKind = "individual" | "group";

const REPROVISION: Record<string, { updateHubAssignment: boolean; migrateDeviceData: boolean }> = {
  reprovisionandmigratedata: { updateHubAssignment: true, migrateDeviceData: true },
  reprovisionandresetdata: { updateHubAssignment: true, migrateDeviceData: false },
  never: { updateHubAssignment: false, migrateDeviceData: false },
};

const ALLOCATION: Record<string, string> = {
  hashed: "hashed",
  geolatency: "geoLatency",
  static: "static",
  custom: "custom",
};

const ATTESTATION: Record<string, "symmetricKey" | "x509" | "tpm"> = {
  symmetrickey: "symmetricKey",
  x509: "x509",
  tpm: "tpm",
};

export function parseFlagBoolean(text: string | boolean | undefined): boolean | undefined {
  if (text === undefined || typeof text === "boolean") return text;
  const t = text.trim().toLowerCase();
  if (t === "true" || t === "yes" || t === "1") return true;
  if (t === "false" || t === "no" || t === "0") return false;
  throw new Error(`'${text}' is not true or false.`);
}

/** The flags create and update share. */
export function enrollmentFlags(cmd: Command, kind: EnrollmentKind, verb: "create" | "update"): Command {
  if (kind === "individual") {
    cmd
      .option("--at, --attestation-type <type>", "symmetrickey, x509 or tpm")
      .option("--ek, --endorsement-key <key>", "the TPM's endorsement key (base64)")
      .option("--device-id <id>", "the device id in the hub (default: the registration id)")
      .option("--info, --device-information <json>", "optional device information, a JSON object");
  } else {
    cmd
      .option("--cn, --root-ca-name <name>", "a CA certificate of the instance, by name (primary)")
      .addOption(new Option("--ca-name <name>", "same as --root-ca-name").hideHelp())
      .option("--scn, --secondary-root-ca-name <name>", "a CA certificate of the instance, by name (secondary)")
      .addOption(new Option("--secondary-ca-name <name>", "same as --secondary-root-ca-name").hideHelp());
  }
  cmd
    .option("--cp, --certificate-path <file>", "a certificate (.pem or .cer): the device's, or the group's signer")
    .option("--scp, --secondary-certificate-path <file>", "the secondary certificate")
    .option("--pk, --primary-key <key>", "symmetric key, base64 (default: generated)")
    .option("--sk, --secondary-key <key>", "secondary symmetric key, base64 (default: generated)")
    .addOption(
      new Option("--ps, --provisioning-status <status>", "enabled or disabled").choices(["enabled", "disabled"]),
    )
    .option("--tags, --initial-twin-tags <json>", "the initial twin's tags, a JSON object")
    .option("--props, --initial-twin-properties <json>", "the initial twin's desired properties, a JSON object")
    .option(
      "--rp, --reprovision-policy <policy>",
      "reprovisionandmigratedata (default), reprovisionandresetdata or never",
    )
    .option("--ap, --allocation-policy <policy>", "hashed, geolatency, static or custom")
    .option("--ih, --iot-hubs <hosts...>", "linked hub host names to allocate among (space or comma separated)")
    .option("--ee, --edge-enabled [bool]", "the device is an IoT Edge device")
    .option("--wh, --webhook-url <url>", "the custom allocation webhook (with --allocation-policy custom)")
    .option("--av, --api-version <version>", "the webhook's API version (with --allocation-policy custom)");
  if (verb === "update") {
    cmd
      .option("-e, --etag <etag>", "the etag read with show (default: the current one, overwriting)")
      .option("--rc, --remove-certificate", "remove the primary certificate")
      .option("--rsc, --remove-secondary-certificate", "remove the secondary certificate");
  }
  return cmd;
}

function readPem(path: string): string {
  try {
    const text = readFileSync(path);
    const s = text.toString("utf8").trim();
    return s.includes("-----BEGIN") ? s : text.toString("base64");
  } catch (err) {
    throw new Error(`Cannot read ${path}: ${(err as Error).message}`);
  }
}

function jsonObject(o: Opts, key: string, flag: string): Record<string, unknown> | undefined {
  const v = str(o, key);
  if (v === undefined) return undefined;
  const parsed = jsonFlag(v, flag);
  if (!isObject(parsed)) throw new Error(`${flag} must be a JSON object.`);
  return parsed;
}

/** `--iot-hubs a b` or `--iot-hubs a,b`: each host once. */
export function hubList(value: string[] | string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const all = (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(/[\s,]+/)).filter(Boolean);
  return [...new Set(all)];
}

function allocationPolicyOf(o: Opts): string | undefined {
  const v = str(o, "allocationPolicy");
  if (v === undefined) return undefined;
  const p = ALLOCATION[v.toLowerCase()];
  if (!p) throw new Error(`--allocation-policy must be hashed, geolatency, static or custom, not '${v}'.`);
  return p;
}

/** Allocation fields, checked as az checks them; `current` is the stored enrollment on update. */
function allocation(o: Opts, verb: "create" | "update", current?: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const policy = allocationPolicyOf(o);
  const hubs = hubList(o.iotHubs as string[] | undefined);
  if (hubs && !policy && verb === "create") {
    throw new Error("--iot-hubs needs --allocation-policy too (static takes one hub; hashed, geolatency, custom any).");
  }
  const effective = policy ?? (current?.allocationPolicy as string | undefined);
  const effectiveHubs = hubs ?? (current?.iotHubs as string[] | undefined);
  if (policy === "static" && (effectiveHubs?.length ?? 0) !== 1) {
    throw new Error("--allocation-policy static needs exactly one hub in --iot-hubs.");
  }
  const webhook = str(o, "webhookUrl");
  const apiVersion = str(o, "apiVersion");
  if (effective === "custom") {
    const def = isObject(current?.customAllocationDefinition) ? current.customAllocationDefinition : {};
    const url = webhook ?? (def.webhookUrl as string | undefined);
    const version = apiVersion ?? (def.apiVersion as string | undefined);
    if (!url || !version) {
      throw new Error("--allocation-policy custom needs --webhook-url and --api-version (e.g. 2019-03-31).");
    }
    out.customAllocationDefinition = { webhookUrl: url, apiVersion: version };
  } else if (webhook || apiVersion) {
    throw new Error("--webhook-url and --api-version go with --allocation-policy custom.");
  }
  if (policy) out.allocationPolicy = policy;
  if (hubs) out.iotHubs = hubs;
  return out;
}

/** Everything besides attestation and allocation. */
function settings(o: Opts, kind: EnrollmentKind, current?: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const status = str(o, "provisioningStatus");
  if (status) out.provisioningStatus = status;
  const tags = jsonObject(o, "initialTwinTags", "--initial-twin-tags");
  const props = jsonObject(o, "initialTwinProperties", "--initial-twin-properties");
  if (tags || props) {
    const twin = isObject(current?.initialTwin) ? current.initialTwin : {};
    const desired =
      isObject(twin.properties) && isObject(twin.properties.desired) ? twin.properties.desired : undefined;
    out.initialTwin = {
      ...((tags ?? twin.tags) ? { tags: tags ?? twin.tags } : {}),
      ...((props ?? desired) ? { properties: { desired: props ?? desired } } : {}),
    };
  }
  const rp = str(o, "reprovisionPolicy");
  if (rp) {
    const policy = REPROVISION[rp.toLowerCase()];
    if (!policy) {
      throw new Error(
        `--reprovision-policy must be reprovisionandmigratedata, reprovisionandresetdata or never, not '${rp}'.`,
      );
    }
    out.reprovisionPolicy = policy;
  }
  const edge = parseFlagBoolean(o.edgeEnabled as string | boolean | undefined);
  if (edge !== undefined) out.capabilities = { iotEdge: edge };
  if (kind === "individual") {
    const deviceId = str(o, "deviceId");
    if (deviceId) out.deviceId = deviceId;
    const info = jsonObject(o, "deviceInformation", "--device-information");
    if (info) out.optionalDeviceInformation = info;
  }
  return out;
}

const certificatePair = (o: Opts) => {
  const primary = str(o, "certificatePath");
  const secondary = str(o, "secondaryCertificatePath");
  if (!primary && !secondary) return undefined;
  return {
    ...(primary ? { primary: { certificate: readPem(primary) } } : {}),
    ...(secondary ? { secondary: { certificate: readPem(secondary) } } : {}),
  };
};

const keysOf = (o: Opts) => ({
  ...(str(o, "primaryKey") ? { primaryKey: str(o, "primaryKey") } : {}),
  ...(str(o, "secondaryKey") ? { secondaryKey: str(o, "secondaryKey") } : {}),
});

const caNames = (o: Opts) => {
  const primary = str(o, "rootCaName") ?? str(o, "caName");
  const secondary = str(o, "secondaryRootCaName") ?? str(o, "secondaryCaName");
  if (!primary && !secondary) return undefined;
  return { ...(primary ? { primary } : {}), ...(secondary ? { secondary } : {}) };
};

/** The attestation a create asks for. */
function newAttestation(o: Opts, kind: EnrollmentKind): Record<string, unknown> {
  const certs = certificatePair(o);
  const keys = keysOf(o);
  const hasKeys = Object.keys(keys).length > 0;
  if (kind === "group") {
    const refs = caNames(o);
    if (certs && refs) throw new Error("Give --certificate-path or --root-ca-name, not both.");
    if ((certs || refs) && hasKeys) throw new Error("Keys go with symmetric-key groups, not with certificates.");
    if (certs) return { type: "x509", x509: { signingCertificates: certs } };
    if (refs) return { type: "x509", x509: { caReferences: refs } };
    return { type: "symmetricKey", symmetricKey: keys };
  }
  const typeText = str(o, "attestationType");
  if (!typeText) throw new Error("--attestation-type (--at) is required: symmetrickey, x509 or tpm.");
  const type = ATTESTATION[typeText.toLowerCase()];
  if (!type) throw new Error(`--attestation-type must be symmetrickey, x509 or tpm, not '${typeText}'.`);
  if (type === "tpm") {
    const ek = str(o, "endorsementKey");
    if (!ek) throw new Error("--attestation-type tpm needs --endorsement-key (--ek).");
    return { type, tpm: { endorsementKey: ek } };
  }
  if (type === "x509") {
    if (!certs?.primary && !certs?.secondary) {
      throw new Error("--attestation-type x509 needs --certificate-path (and/or --secondary-certificate-path).");
    }
    return { type, x509: { clientCertificates: certs } };
  }
  if (certs) throw new Error("Certificates go with --attestation-type x509.");
  return { type, symmetricKey: keys };
}

/** The body of a create: PUT without If-Match. */
export function createBody(o: Opts, kind: EnrollmentKind, id: string): Record<string, unknown> {
  return {
    ...(kind === "individual" ? { registrationId: id } : { enrollmentGroupId: id }),
    attestation: newAttestation(o, kind),
    ...settings(o, kind),
    ...allocation(o, "create"),
  };
}

/**
 * The body of an update: the stored enrollment (as GET shows it, keys from attestationmechanism)
 * with the flags given applied. The attestation type cannot change (management.md §7.5).
 */
export function updateBody(
  o: Opts,
  kind: EnrollmentKind,
  current: Record<string, unknown>,
  currentAttestation: Record<string, unknown>,
): Record<string, unknown> {
  const type = currentAttestation.type;
  const certs = certificatePair(o);
  const keys = keysOf(o);
  let attestation: Record<string, unknown> = currentAttestation;
  const typeText = str(o, "attestationType");
  if (typeText && ATTESTATION[typeText.toLowerCase()] !== type) {
    throw new Error(`The attestation type cannot change (it is ${String(type)}); delete and create instead.`);
  }
  if (type === "symmetricKey") {
    if (certs || (kind === "group" && caNames(o))) {
      throw new Error("This enrollment uses symmetric keys; certificates cannot be added to it.");
    }
    const stored = isObject(currentAttestation.symmetricKey) ? currentAttestation.symmetricKey : {};
    attestation = { type, symmetricKey: { ...stored, ...keys } };
  } else if (type === "x509") {
    if (Object.keys(keys).length > 0) throw new Error("This enrollment uses X.509; keys cannot be added to it.");
    const x = isObject(currentAttestation.x509) ? currentAttestation.x509 : {};
    const field = kind === "group" ? "signingCertificates" : "clientCertificates";
    const refs = kind === "group" ? caNames(o) : undefined;
    const stored = isObject(x[field]) ? (x[field] as Record<string, unknown>) : undefined;
    let pair: Record<string, unknown> | undefined = stored ? { ...stored } : undefined;
    if (certs) pair = { ...(pair ?? {}), ...certs };
    if (o.removeCertificate === true && pair) delete pair.primary;
    if (o.removeSecondaryCertificate === true && pair) delete pair.secondary;
    if (refs) {
      const storedRefs = isObject(x.caReferences) ? x.caReferences : {};
      attestation = { type, x509: { caReferences: { ...storedRefs, ...refs } } };
    } else if (pair) {
      if (!pair.primary && pair.secondary) pair = { primary: pair.secondary };
      if (!pair.primary) throw new Error("An X.509 enrollment needs at least one certificate; do not remove both.");
      attestation = { type, x509: { [field]: pair } };
    }
  } else if (type === "tpm") {
    if (certs || Object.keys(keys).length > 0) throw new Error("This enrollment uses a TPM; only --ek can change.");
    const ek = str(o, "endorsementKey");
    if (ek) attestation = { type, tpm: { endorsementKey: ek } };
  }
  const body: Record<string, unknown> = { ...current, attestation, ...settings(o, kind, current) };
  Object.assign(body, allocation(o, "update", current));
  // The server keeps its own bookkeeping; a stale copy in the body would only confuse a reader.
  for (const k of ["registrationState", "createdDateTimeUtc", "lastUpdatedDateTimeUtc"]) delete body[k];
  if (body.allocationPolicy !== "custom") delete body.customAllocationDefinition;
  return body;
}
