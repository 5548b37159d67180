// Who holds a port, from /proc/net/tcp's text (fixtures) and from this very process.
import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import { listeningInodes, portOwner } from "../../src/server/port-owner.js";

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:20FB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2754425 1 0000000000000000 100 0 0 10 0
   1: 0100007F:20FB 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 2754999 1 0000000000000000 100 0 0 10 0
   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2754500 1 0000000000000000 100 0 0 10 0
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:20FB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3000001 1 0000000000000000 100 0 0 10 0
`;

test("listening sockets of a port, IPv4 and IPv6; connections to it are not listeners", () => {
  assert.deepEqual(listeningInodes(TCP, 8443), ["2754425"]);
  assert.deepEqual(listeningInodes(TCP, 8080), ["2754500"]);
  assert.deepEqual(listeningInodes(TCP6, 8443), ["3000001"]);
  assert.deepEqual(listeningInodes(TCP, 5671), []);
  assert.deepEqual(listeningInodes("", 8443), []);
});

test("the process holding a port is found: this one", async () => {
  const server = net.createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  try {
    const owner = portOwner((server.address() as net.AddressInfo).port);
    assert.equal(owner?.pid, process.pid);
    assert.match(owner?.command ?? "", /node/);
  } finally {
    server.close();
  }
});
