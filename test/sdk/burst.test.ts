// A burst of devices arriving at once (issue "Reliability under faults" 4), bounded to fit CI:
// past the in-flight bound devices are shed with spread Retry-Afters, and every device that
// waits as told gets assigned; none fails.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { deriveKey } from "../support/device-clients.js";
import { deviceToken, enrollGroup } from "../support/enrollments.js";
import { hubOf } from "../support/hub-clients.js";
import { call } from "../support/management.js";
import { startProvisio } from "../support/provisio-process.js";
import { serviceClient } from "../support/service-client.js";

test("300 devices at once against a bound of 30: shed devices wait the spread Retry-After and all end assigned", async () => {
  const p = await startProvisio({ env: { PROVISIO_MAX_IN_FLIGHT: "30" } });
  // A custom allocation webhook that takes 300 ms: the work a node carries piles up as it would
  // behind a slow hub, and the bound is what keeps it in check.
  const webhook = createServer((req, res) => {
    req.resume();
    setTimeout(() => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ iotHubHostName: hubOf(p).hostName }));
    }, 300);
  });
  webhook.listen(0, "127.0.0.1");
  await once(webhook, "listening");
  try {
    const groupKey = await enrollGroup(serviceClient(p), "burst-group", {
      allocationPolicy: "custom",
      customAllocationDefinition: {
        webhookUrl: `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/allocate`,
        apiVersion: "2019-03-31",
      },
    });
    const waits: number[] = [];
    const device = async (i: number): Promise<number> => {
      const id = `burst-dev-${i}`;
      const key = deriveKey(groupKey, id);
      for (let attempt = 1; attempt <= 30; attempt++) {
        const r = await call(p, "PUT", `/${p.info.idScope}/registrations/${id}/register?api-version=2019-03-31`, {
          body: JSON.stringify({ registrationId: id }),
          auth: deviceToken(p, id, key),
        });
        if (r.status === 200) {
          assert.equal((r.json() as { status: string }).status, "assigned");
          return attempt;
        }
        assert.equal(r.status, 429, r.text);
        const wait = Number(r.headers["retry-after"]);
        waits.push(wait);
        await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      }
      throw new Error(`${id} never got through`);
    };
    const attempts = await Promise.all(Array.from({ length: 300 }, (_, i) => device(i)));
    assert.equal(attempts.length, 300);
    assert.ok(waits.length > 0, "the bound shed some of the burst");
    assert.ok(new Set(waits).size > 1, `Retry-After values are spread: ${[...new Set(waits)]}`);
    assert.ok(Math.min(...waits) >= 2);
  } finally {
    webhook.closeAllConnections();
    webhook.close();
    await p.dispose();
  }
});
