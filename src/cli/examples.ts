// `--help` examples for every verb: what an operator types, as az's help shows it.
const EXAMPLES: Record<string, string[]> = {
  serve: [
    "provisio serve",
    "provisio serve --data-dir /var/lib/provisio --host dps.example.com --https-port 443",
    "PROVISIO_DATABASE_URL=postgres://provisio@db/provisio provisio serve --profile azure",
  ],
  status: ["provisio status", "provisio status --data-dir /var/lib/provisio --output json"],
  "hub monitor-events": ["provisio hub monitor-events --device-id sensor-001", "provisio hub monitor-events --recent"],
  "certificate create": [
    "provisio certificate create -n plant-a-root -p root.pem",
    "provisio certificate create -n lab -p lab.cer --verified",
  ],
  "certificate list": ["provisio certificate list --output table"],
  "certificate show": ["provisio certificate show -n plant-a-root"],
  "certificate update": ["provisio certificate update -n plant-a-root -p renewed.pem --etag <etag>"],
  "certificate delete": ["provisio certificate delete -n plant-a-root --etag <etag>"],
  "certificate generate-verification-code": [
    "provisio certificate generate-verification-code -n plant-a-root --etag <etag>",
  ],
  "certificate verify": ["provisio certificate verify -n plant-a-root -p verification.pem --etag <etag>"],
  "cert generate": ["provisio cert generate --out certs --device sensor-001 --device sensor-002"],
  "cert generate-verification": [
    "provisio cert generate-verification --ca-cert certs/root.pem --ca-key certs/root.key --code <code> --out verification.pem",
  ],
  "tls probe": [
    "provisio tls probe --protocol mqtt",
    "provisio tls probe --tls-version 1.2 --cipher TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
  ],
  "database copy": ["provisio database copy --data-dir ./provisio-data --database-url postgres://provisio@db/provisio"],
  "database backup": ["provisio database backup --data-dir ./provisio-data --to ./backup-2026-12-02"],
  enrollment: [
    "provisio enrollment list --output table",
    "provisio enrollment create --eid dev-01 --attestation-type symmetrickey",
  ],
  "enrollment create": [
    "provisio enrollment create --eid dev-01 --attestation-type symmetrickey",
    "provisio enrollment create --eid dev-02 --at x509 --cp dev-02.pem --ap static --ih hub-1.localhost",
    'provisio enrollment create --eid dev-03 --at tpm --ek AToAAQALAAMA... --tags \'{"site":"north"}\'',
  ],
  "enrollment show": ["provisio enrollment show --eid dev-01 --show-keys"],
  "enrollment list": ["provisio enrollment list --top 50 --output table"],
  "enrollment update": [
    "provisio enrollment update --eid dev-01 --ps disabled",
    "provisio enrollment update --eid dev-01 --props '{\"interval\":30}' --etag '\"AAAAAAA=\"'",
  ],
  "enrollment delete": ["provisio enrollment delete --eid dev-01"],
  "enrollment registration show": ["provisio enrollment registration show --eid dev-01"],
  "enrollment registration delete": ["provisio enrollment registration delete --eid dev-01 --deprovision"],
  "enrollment-group": [
    "provisio enrollment-group create --gid sensors",
    "provisio enrollment-group compute-device-key --gid sensors --rid sensor-001",
  ],
  "enrollment-group create": [
    "provisio enrollment-group create --gid sensors",
    "provisio enrollment-group create --gid plant-a --ca-name plant-a-root --ee",
    "provisio enrollment-group create --gid custom --ap custom --wh https://alloc.example/api --av 2019-03-31",
  ],
  "enrollment-group show": ["provisio enrollment-group show --gid sensors --show-keys"],
  "enrollment-group list": ["provisio enrollment-group list --output table"],
  "enrollment-group update": [
    "provisio enrollment-group update --gid sensors --rp never --ap hashed --ih hub-1.localhost",
  ],
  "enrollment-group delete": ["provisio enrollment-group delete --gid sensors"],
  "enrollment-group compute-device-key": [
    "provisio enrollment-group compute-device-key --gid sensors --rid sensor-001",
    "provisio enrollment-group compute-device-key --key <group key> --rid sensor-001",
  ],
  "enrollment-group registration list": ["provisio enrollment-group registration list --gid sensors --output table"],
  "enrollment-group registration show": ["provisio enrollment-group registration show --gid sensors --rid sensor-001"],
  "enrollment-group registration delete": [
    "provisio enrollment-group registration delete --gid sensors --rid sensor-001 --deprovision",
  ],
  registration: [
    "provisio registration show --rid sensor-001",
    "provisio registration attempts --rid sensor-001 -o table",
  ],
  "registration list": ["provisio registration list --gid sensors --output table"],
  "registration show": ["provisio registration show --rid sensor-001"],
  "registration delete": ["provisio registration delete --rid sensor-001 --deprovision"],
  "registration attempts": ["provisio registration attempts --rid sensor-001 --output table"],
  "compute-device-key": ["provisio compute-device-key --key <group key> --rid sensor-001"],
  "linked-hub": ["provisio linked-hub list --output table"],
  "linked-hub create": [
    "provisio linked-hub create --connection-string 'HostName=hub-2.example;SharedAccessKeyName=iothubowner;SharedAccessKey=...' --location westus",
    "provisio linked-hub create --hub-name <built-in hub> --allocation-weight 5",
  ],
  "linked-hub list": ["provisio linked-hub list --output table"],
  "linked-hub show": ["provisio linked-hub show --linked-hub hub-2.example"],
  "linked-hub update": ["provisio linked-hub update --linked-hub hub-2.example --allocation-weight 10"],
  "linked-hub delete": ["provisio linked-hub delete --linked-hub hub-2.example"],
  policy: ["provisio policy list --output table"],
  "policy create": ["provisio policy create --pn readers --rights EnrollmentRead RegistrationStatusRead"],
  "policy list": ["provisio policy list --output table"],
  "policy show": ["provisio policy show --pn readers"],
  "policy update": ["provisio policy update --pn readers --primary-key ''"],
  "policy delete": ["provisio policy delete --pn readers"],
  "connection-string show": [
    "provisio connection-string show --pn readers",
    "provisio connection-string show --dps-name second --show-all",
  ],
  instance: ["provisio instance list --output table"],
  "instance create": ["provisio instance create --name staging --location westus"],
  "instance list": ["provisio instance list --output table"],
  "instance show": ["provisio instance show --name staging"],
  "instance update": [
    "provisio instance update --name staging --set properties.allocationPolicy=GeoLatency",
    "provisio instance update --name staging --public-network-access Disabled",
  ],
  "instance delete": ["provisio instance delete --name staging"],
  apply: ["provisio apply -f fleet.yaml --dry-run", "provisio apply -f fleet/ --prune"],
  export: ["provisio export > fleet.yaml", "provisio export --dps-name staging --include-secrets -o json"],
  "device register": [
    "provisio device register --rid dev-01 --key <device key>",
    "provisio device register --rid sensor-001 --gid sensors --protocol mqtt",
  ],
  "device simulate": [
    "provisio device simulate --count 1000 --gid sensors --protocol mqtt --concurrency 50",
    "provisio device simulate --count 200 --attestation x509 --signing-cert int.pem --signing-key int.key --send-message",
    "provisio device simulate --provisioning-host my-dps.example:443 --id-scope 0ne00000001 --group-key <key> --ca-file ca.pem --count 100",
  ],
  completion: ["provisio completion bash > /etc/bash_completion.d/provisio", "source <(provisio completion zsh)"],
};

/** The help text after a verb's options: its examples, when it has any. */
export function examples(verb: string): string {
  const lines = EXAMPLES[verb];
  if (!lines) return "";
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join("\n")}\n`;
}

/** Every verb with examples, for the test that each verb has some. */
export const VERBS_WITH_EXAMPLES = Object.keys(EXAMPLES);
