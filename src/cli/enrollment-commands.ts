// `provisio enrollment …` and `provisio enrollment-group …`: az iot dps's enrollment verbs
// (management.md §7.5) over the service API (service-api.md §3-4), with a group's registration
// records and compute-device-key.
import { type Command, Option } from "commander";
import { deriveDeviceKey } from "../attestation/symmetric-key.js";
import { isObject } from "../domain/json.js";
import type { DpsClient } from "./dps-client.js";
import { createBody, type EnrollmentKind, enrollmentFlags, updateBody } from "./enrollment-options.js";
import { DpsSession, type Opts, print, required, serverOptions, str } from "./server-options.js";

const API = "api-version=2021-10-01";
const seg = encodeURIComponent;

interface KindInfo {
  collection: "enrollments" | "enrollmentGroups";
  noun: string;
  idFlag: string;
}

const KINDS: Record<EnrollmentKind, KindInfo> = {
  individual: { collection: "enrollments", noun: "individual enrollment", idFlag: "--enrollment-id (--eid)" },
  group: { collection: "enrollmentGroups", noun: "enrollment group", idFlag: "--group-id (--gid)" },
};

/** The id flags: --enrollment-id/--eid everywhere, and --group-id/--gid for groups as az has both. */
function idFlags(cmd: Command, kind: EnrollmentKind): Command {
  cmd.option("--eid, --enrollment-id <id>", kind === "group" ? "the enrollment group id" : "the registration id");
  if (kind === "group") {
    cmd.addOption(new Option("--gid, --group-id <id>", "the enrollment group id (same as --enrollment-id)"));
  }
  return cmd;
}

const idOf = (o: Opts, kind: EnrollmentKind): string => {
  const id = str(o, "groupId") ?? str(o, "enrollmentId");
  if (!id) throw new Error(`${KINDS[kind].idFlag} is required.`);
  return id;
};

const pathOf = (kind: EnrollmentKind, id: string, action = ""): string =>
  `/${KINDS[kind].collection}/${seg(id)}${action}?${API}`;

/** The stored enrollment with its keys, as `--show-keys` shows it. */
async function withKeys(client: DpsClient, kind: EnrollmentKind, e: Record<string, unknown>, id: string) {
  const attestation = await client.call("POST", pathOf(kind, id, "/attestationmechanism"));
  return { ...e, attestation };
}

const data = (cmd: Command, right: string) => serverOptions(cmd, right).option("--dps-name <name>", "the instance");

export function registerEnrollmentCommands(program: Command, kind: EnrollmentKind): void {
  const { noun } = KINDS[kind];
  const name = kind === "individual" ? "enrollment" : "enrollment-group";
  const group = program.command(name).description(`Manage ${noun}s (like az iot dps ${name})`);

  enrollmentFlags(
    idFlags(
      data(group.command("create").description(`Create an ${noun}; fails if the id exists`), "EnrollmentWrite"),
      kind,
    ),
    kind,
    "create",
  ).action(async (o: Opts) => {
    const client = await new DpsSession(o).dataPlane("EnrollmentWrite");
    const id = idOf(o, kind);
    const body = createBody(o, kind, id);
    const existing = await client.send("GET", pathOf(kind, id));
    if (existing.status === 200) {
      throw new Error(`${noun} '${id}' already exists; change it with 'provisio ${name} update'.`);
    }
    print(await client.call("PUT", pathOf(kind, id), { body }), o);
  });

  idFlags(data(group.command("show").description(`Show an ${noun}`), "EnrollmentRead"), kind)
    .option("--keys, --show-keys", "include the symmetric keys")
    .action(async (o: Opts) => {
      const client = await new DpsSession(o).dataPlane("EnrollmentRead");
      const id = idOf(o, kind);
      const e = (await client.call("GET", pathOf(kind, id))) as Record<string, unknown>;
      print(o.showKeys === true ? await withKeys(client, kind, e, id) : e, o);
    });

  data(group.command("list").description(`List the ${noun}s`), "EnrollmentRead")
    .option("--top <n>", "at most this many (default: all, paged)")
    .action(async (o: Opts) => {
      const client = await new DpsSession(o).dataPlane("EnrollmentRead");
      print(await client.query(`/${KINDS[kind].collection}/query?${API}`, topOf(o)), o);
    });

  enrollmentFlags(
    idFlags(data(group.command("update").description(`Change an ${noun}'s settings`), "EnrollmentWrite"), kind),
    kind,
    "update",
  ).action(async (o: Opts) => {
    const client = await new DpsSession(o).dataPlane("EnrollmentWrite");
    const id = idOf(o, kind);
    const current = (await client.call("GET", pathOf(kind, id))) as Record<string, unknown>;
    const attestation = (await client.call("POST", pathOf(kind, id, "/attestationmechanism"))) as Record<
      string,
      unknown
    >;
    const body = updateBody(o, kind, current, attestation);
    const etag = str(o, "etag") ?? String(current.etag ?? "*");
    print(await client.call("PUT", pathOf(kind, id), { body, headers: { "if-match": etag } }), o);
  });

  idFlags(data(group.command("delete").description(`Delete an ${noun}`), "EnrollmentWrite"), kind)
    .option("-e, --etag <etag>", "delete only if unchanged since this etag")
    .action(async (o: Opts) => {
      const client = await new DpsSession(o).dataPlane("EnrollmentWrite");
      const etag = str(o, "etag");
      await client.call("DELETE", pathOf(kind, idOf(o, kind)), etag ? { headers: { "if-match": etag } } : {});
    });

  registerRecordCommands(group, kind);
  if (kind === "group") {
    idFlags(
      data(
        group
          .command("compute-device-key")
          .description("Derive a device's key from a symmetric-key group's key (HMAC-SHA256 of the registration id)"),
        "EnrollmentRead",
      ),
      kind,
    )
      .option("--key, --symmetric-key <key>", "the group key (instead of reading it from the service)")
      .option("--rid, --registration-id <id>", "the device's registration id")
      .action(async (o: Opts) => print(await computeDeviceKey(o), o));
  }
}

const topOf = (o: Opts): number | undefined => {
  const t = str(o, "top");
  if (t === undefined) return undefined;
  const n = Number(t);
  if (!Number.isInteger(n) || n < 1) throw new Error("--top must be a whole number of at least 1.");
  return n;
};

/** The derived device key, from `--key` or the group's primary key read from the service. */
export async function computeDeviceKey(o: Opts): Promise<string> {
  const rid = required(o, "registrationId", "--registration-id (--rid)");
  const key = str(o, "symmetricKey");
  if (key) return deriveDeviceKey(key, rid);
  const gid = str(o, "groupId") ?? str(o, "enrollmentId");
  if (!gid) throw new Error("Give --key (the group key) or --group-id (--gid) to read it from the service.");
  const client = await new DpsSession(o).dataPlane("EnrollmentRead");
  const attestation = await client.call("POST", pathOf("group", gid, "/attestationmechanism"));
  const keys = isObject(attestation) && isObject(attestation.symmetricKey) ? attestation.symmetricKey : undefined;
  if (typeof keys?.primaryKey !== "string") {
    throw new Error(`Enrollment group '${gid}' does not use symmetric keys: there is no key to derive from.`);
  }
  return deriveDeviceKey(keys.primaryKey, rid);
}

/** `… registration list|show|delete`: device registration records (service-api.md §3.6). */
function registerRecordCommands(parent: Command, kind: EnrollmentKind): void {
  const records = parent.command("registration").description("The registration records of its devices");
  const recordPath = (id: string) => `/registrations/${seg(id)}?${API}`;
  if (kind === "group") {
    idFlags(
      data(records.command("list").description("List the group's registration records"), "RegistrationStatusRead"),
      kind,
    )
      .option("--top <n>", "at most this many (default: all, paged)")
      .action(async (o: Opts) => {
        const client = await new DpsSession(o).dataPlane("RegistrationStatusRead");
        print(await client.query(`/registrations/${seg(idOf(o, kind))}/query?${API}`, topOf(o)), o);
      });
  }
  const target = (cmd: Command) =>
    kind === "group"
      ? idFlags(cmd, kind).option("--rid, --registration-id <id>", "the device's registration id")
      : idFlags(cmd, kind);
  const rid = (o: Opts) =>
    kind === "group" ? required(o, "registrationId", "--registration-id (--rid)") : idOf(o, kind);

  target(
    data(records.command("show").description("Show a device's registration record"), "RegistrationStatusRead"),
  ).action(async (o: Opts) => {
    const client = await new DpsSession(o).dataPlane("RegistrationStatusRead");
    print(await client.call("GET", recordPath(rid(o))), o);
  });

  target(
    data(records.command("delete").description("Delete a device's registration record"), "RegistrationStatusWrite"),
  )
    .option("-e, --etag <etag>", "delete only if unchanged since this etag")
    .option("--deprovision", "also remove the device from the hub it was assigned to")
    .action(async (o: Opts) => deleteRecord(o, rid(o)));
}

/** DELETE a registration record; `--deprovision` removes the hub device too (a Provisio extension). */
export async function deleteRecord(o: Opts, rid: string): Promise<void> {
  const client = await new DpsSession(o).dataPlane("RegistrationStatusWrite");
  const etag = str(o, "etag");
  const deprovision = o.deprovision === true ? "&deprovision=true" : "";
  await client.call(
    "DELETE",
    `/registrations/${seg(rid)}?${API}${deprovision}`,
    etag ? { headers: { "if-match": etag } } : {},
  );
}
