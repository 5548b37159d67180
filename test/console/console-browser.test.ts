// The web console in a real browser (Debian's Chromium through playwright-core) against a real
// `provisio serve`: controls are found by role and name, as people with screen readers find
// them, and every change made through a form is checked with the real service or device SDK.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { createRootCa, createVerificationCertificate } from "../../src/security/cert-factory.js";
import {
  BLADE_NAMES,
  consoleUrl,
  launchChromium,
  newConsoleContext,
  openBlade,
  signIn,
  withScreenshots,
} from "../support/browser.js";
import { httpTransport, registerWithKey } from "../support/device-clients.js";
import { addPolicy, call } from "../support/management.js";
import { startIssuer, type TestIssuer } from "../support/oidc-issuer.js";
import { type ProvisioProcess, startProvisio } from "../support/provisio-process.js";
import { seedEnrollments } from "../support/seed.js";
import { serviceClient } from "../support/service-client.js";

describe("console in a browser", () => {
  let p: ProvisioProcess;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const files = mkdtempSync(join(tmpdir(), "provisio-console-"));

  before(async () => {
    [p, browser] = await Promise.all([startProvisio(), launchChromium()]);
  });
  after(async () => {
    await browser?.close();
    await p?.dispose();
  });

  /** Each test in a fresh browser context, signed in with `connectionString` (owner by default). */
  const run = (name: string, body: () => Promise<void>, connectionString?: string) =>
    test(name, async () => {
      context = await newConsoleContext(browser);
      page = await context.newPage();
      try {
        await withScreenshots(page, name, async () => {
          await signIn(page, p, connectionString);
          await body();
        });
      } finally {
        await context.close();
      }
    });

  const dialog = () => page.getByRole("dialog");

  test("a bad connection string gets a message that says what to do", async () => {
    context = await newConsoleContext(browser);
    page = await context.newPage();
    try {
      await withScreenshots(page, "bad connection string", async () => {
        await page.goto(`https://localhost:${p.info.ports.https}/`);
        await page.getByLabel("Connection string").fill("not a connection string");
        await page.getByRole("button", { name: "Sign in" }).click();
        await page
          .getByRole("alert")
          .getByText(/not a service connection string/)
          .waitFor();

        const wrongKey = p.info.serviceConnectionString.replace(
          /SharedAccessKey=.*/,
          `SharedAccessKey=${"A".repeat(43)}=`,
        );
        await page.getByLabel("Connection string").fill(wrongKey);
        await page.getByRole("button", { name: "Sign in" }).click();
        const alert = page.getByRole("alert");
        await alert.getByText(/does not verify/).waitFor();
        assert.match(await alert.innerText(), /401.*Sign in again with a policy/s);
        assert.equal(await page.getByRole("navigation", { name: "Blades" }).count(), 0);
      });
    } finally {
      await context.close();
    }
  });

  run("every blade opens, with its name in the navigation", async () => {
    for (const name of [...BLADE_NAMES.slice(1), "Overview"] as const) await openBlade(page, name);
    assert.match(await page.getByText("ID Scope").locator("xpath=following-sibling::dd[1]").innerText(), /^0ne/);
  });

  run(
    "an individual enrollment and an enrollment group made with the forms are what the service SDK reads",
    async () => {
      await openBlade(page, "Enrollments");
      await page.getByRole("button", { name: "Add individual enrollment" }).click();
      await dialog().getByLabel("Registration ID").fill("console-dev-1");
      await dialog().getByLabel("IoT Hub device ID").fill("console-device-1");
      await dialog()
        .getByLabel("Initial device twin state")
        .fill('{"tags":{"site":"lab"},"properties":{"desired":{"rate":5}}}');
      await dialog().getByLabel("Allocation policy").selectOption("static");
      await dialog().getByRole("checkbox", { name: "hub-1.localhost" }).check();
      await dialog().getByLabel("Reprovisioning policy").selectOption("reprovisionandresetdata");
      await dialog().getByRole("button", { name: "Save" }).click();
      await page.getByRole("button", { name: "console-dev-1" }).waitFor();

      await page.getByRole("button", { name: "Add enrollment group" }).click();
      await dialog().getByLabel("Group name").fill("console-group");
      await dialog().getByLabel("Enable this enrollment").uncheck();
      await dialog().getByLabel("IoT Edge device").check();
      await dialog().getByRole("button", { name: "Save" }).click();
      await page.getByRole("tab", { name: "Enrollment groups" }).click();
      await page.getByRole("button", { name: "console-group" }).waitFor();

      const svc = serviceClient(p);
      const e = (await svc.getIndividualEnrollment("console-dev-1")).responseBody;
      assert.equal(e.deviceId, "console-device-1");
      assert.equal(e.attestation.type, "symmetricKey");
      assert.equal(e.allocationPolicy, "static");
      assert.deepEqual(e.iotHubs, ["hub-1.localhost"]);
      assert.deepEqual(e.initialTwin, { tags: { site: "lab" }, properties: { desired: { rate: 5 } } });
      assert.deepEqual(e.reprovisionPolicy, { updateHubAssignment: true, migrateDeviceData: false });
      const g = (await svc.getEnrollmentGroup("console-group")).responseBody;
      assert.equal(g.provisioningStatus, "disabled");
      assert.equal(g.capabilities?.iotEdge, true);

      // Editing keeps the keys and changes what was changed.
      const keysBefore = (await svc.getIndividualEnrollmentAttestationMechanism("console-dev-1")).responseBody;
      await page.getByRole("tab", { name: "Individual enrollments" }).click();
      await page.getByRole("button", { name: "console-dev-1" }).click();
      await dialog().getByRole("button", { name: "Edit" }).click();
      await dialog().getByLabel("IoT Hub device ID").fill("console-device-renamed");
      await dialog().getByRole("button", { name: "Save" }).click();
      await dialog().waitFor({ state: "detached" });
      const edited = (await svc.getIndividualEnrollment("console-dev-1")).responseBody;
      assert.equal(edited.deviceId, "console-device-renamed");
      const keysAfter = (await svc.getIndividualEnrollmentAttestationMechanism("console-dev-1")).responseBody;
      assert.deepEqual(keysAfter, keysBefore);

      // A bad twin is named before anything is sent.
      await page.getByRole("button", { name: "Add individual enrollment" }).click();
      await dialog().getByLabel("Registration ID").fill("console-bad-twin");
      await dialog().getByLabel("Initial device twin state").fill("{ not json");
      await dialog().getByRole("button", { name: "Save" }).click();
      await dialog()
        .getByRole("alert")
        .getByText(/Not JSON/)
        .waitFor();
      await dialog().getByRole("button", { name: "Cancel" }).click();
      await assert.rejects(svc.getIndividualEnrollment("console-bad-twin"));
    },
  );

  run("a device registered with the device SDK appears with its hub, and its attempt is explained", async () => {
    const svc = serviceClient(p);
    const created = await svc.createOrUpdateIndividualEnrollment({
      registrationId: "console-device-2",
      attestation: { type: "symmetricKey" },
    } as unknown as Parameters<typeof svc.createOrUpdateIndividualEnrollment>[0]);
    const key = created.responseBody.attestation.symmetricKey?.primaryKey ?? "";
    const result = await registerWithKey(p, httpTransport(p), "console-device-2", key);
    assert.equal(result.assignedHub, "hub-1.localhost");

    await openBlade(page, "Registrations");
    const row = page.getByRole("row", { name: /console-device-2/ });
    await row.waitFor();
    assert.match(await row.innerText(), /assigned.*hub-1\.localhost/s);
    await row.getByRole("button", { name: "console-device-2" }).click();
    await dialog().getByRole("heading", { name: "Attempts, explained" }).waitFor();
    const attempt = dialog().getByRole("article").first();
    await attempt.waitFor();
    const text = await attempt.innerText();
    assert.match(text, /assigned over http from/);
    assert.match(text, /attest\w* passed/i);
    await dialog().getByRole("button", { name: "Dry run" }).click();
    await dialog().getByRole("heading", { name: "Dry run" }).waitFor();
    await dialog().getByRole("button", { name: "Close" }).click();

    // The device is on the built-in hub, read cross-origin with the hub's own policy.
    await openBlade(page, "Built-in hubs");
    await page.getByRole("button", { name: "hub-1.localhost" }).click();
    await page.getByRole("button", { name: "console-device-2" }).waitFor();

    // Overview counts it and charts it.
    await openBlade(page, "Overview");
    await page.getByRole("img", { name: /Device operations: [1-9]\d* succeeded/ }).waitFor();
  });

  run("a CA certificate is uploaded and verified by proof of possession", async () => {
    const ca = await createRootCa("Console Test Root");
    writeFileSync(join(files, "root.pem"), ca.certPem);
    await openBlade(page, "Certificates");
    await page.getByRole("button", { name: "Add certificate" }).click();
    await dialog().getByLabel("Certificate name").fill("console-root");
    await dialog().getByLabel("Certificate .pem or .cer file").setInputFiles(join(files, "root.pem"));
    await dialog().getByRole("button", { name: "Save" }).click();
    const row = page.getByRole("row", { name: /console-root/ });
    await row.getByText("Unverified").waitFor();

    await page.getByRole("button", { name: "Verify console-root" }).click();
    await dialog().getByRole("button", { name: "Generate verification code" }).click();
    const code = await dialog().getByRole("status", { name: "Verification code" }).innerText();
    assert.match(code, /^[0-9A-F]{40}$/);
    const proof = await createVerificationCertificate(ca, code);
    writeFileSync(join(files, "verify.pem"), proof.certPem);
    await dialog().getByLabel("Verification certificate .pem or .cer file").setInputFiles(join(files, "verify.pem"));
    await dialog().getByRole("button", { name: "Verify", exact: true }).click();
    await dialog().getByText("console-root is verified.").waitFor();
    await dialog().getByRole("button", { name: "Close" }).click();
    await row.getByText("Verified", { exact: true }).waitFor();

    const stored = await call(
      p,
      "GET",
      "/provisioningServices/provisio/certificates/console-root?api-version=2022-02-05",
    );
    assert.equal((stored.json() as { properties: { isVerified: boolean } }).properties.isVerified, true);
  });

  run("a linked hub's weight is edited", async () => {
    await openBlade(page, "Linked hubs");
    await page.getByLabel("Allocation weight of hub-1.localhost").fill("7");
    await page.getByRole("button", { name: "Save linked hubs" }).click();
    await page.getByRole("status").getByText("Saved.").waitFor();
    const r = await call(p, "GET", "/provisioningServices/provisio?api-version=2022-02-05");
    const hubs = (r.json() as { properties: { iotHubs: { name: string; allocationWeight: number }[] } }).properties
      .iotHubs;
    assert.equal(hubs.find((h) => h.name === "hub-1.localhost")?.allocationWeight, 7);
  });

  test("a read-only policy sees no edit controls", async () => {
    const svc = serviceClient(p);
    await svc.createOrUpdateIndividualEnrollment({
      registrationId: "console-readonly-1",
      attestation: { type: "symmetricKey" },
    } as unknown as Parameters<typeof svc.createOrUpdateIndividualEnrollment>[0]);
    const reader = await addPolicy(p, "console-readonly", "EnrollmentRead, RegistrationStatusRead");
    context = await newConsoleContext(browser);
    page = await context.newPage();
    try {
      await withScreenshots(page, "read only", async () => {
        await signIn(page, p, reader);
        await page.getByText("(read only)").waitFor();
        await openBlade(page, "Enrollments");
        await page.getByRole("button", { name: "console-readonly-1" }).click();
        await dialog().getByRole("button", { name: "Show keys" }).waitFor();
        assert.equal(await dialog().getByRole("button", { name: "Edit" }).count(), 0);
        assert.equal(await dialog().getByRole("button", { name: "Delete" }).count(), 0);
        await dialog().getByRole("button", { name: "Close" }).click();
        assert.equal(await page.getByRole("button", { name: /^Add / }).count(), 0);
        await openBlade(page, "Registrations");
        await page.getByRole("table", { name: "Registration records" }).waitFor();
        await openBlade(page, "Linked hubs");
        await page.getByText(/with a policy that has ServiceConfig/).waitFor();
        assert.equal(await page.getByRole("button", { name: /Save/ }).count(), 0);
        await openBlade(page, "Certificates");
        assert.equal(await page.getByRole("button", { name: "Add certificate" }).count(), 0);
      });
    } finally {
      await context.close();
    }
  });
});

describe("console with a fleet of 100,000 enrollments", () => {
  let p: ProvisioProcess;
  let browser: Browser;
  before(async () => {
    [p, browser] = await Promise.all([startProvisio(), launchChromium()]);
    await seedEnrollments(p.dataDir, p.info.idScope, "fleet-", 100_000);
  });
  after(async () => {
    await browser?.close();
    await p?.dispose();
  });

  test("pages and searches on the server: the first page, the next, a search near the end, and the count", async () => {
    const context = await newConsoleContext(browser);
    const page = await context.newPage();
    // Every enrollment list call the console makes asks for one page, never the whole fleet.
    const pageSizes: string[] = [];
    page.on("request", (r) => {
      if (r.url().includes("/enrollments/query")) pageSizes.push(r.headers()["x-ms-max-item-count"] ?? "none");
    });
    try {
      await withScreenshots(page, "fleet of 100000", async () => {
        await signIn(page, p);
        await page.getByText("100000", { exact: true }).waitFor();
        await openBlade(page, "Enrollments");
        await page.getByRole("button", { name: "fleet-000050", exact: true }).waitFor();
        assert.equal(await page.getByRole("button", { name: "fleet-000051", exact: true }).count(), 0);
        await page.getByRole("button", { name: "Next page" }).click();
        await page.getByRole("button", { name: "fleet-000100", exact: true }).waitFor();
        await page.getByText("Page 2").waitFor();
        await page.getByLabel("Search by ID prefix").fill("fleet-09999");
        await page.getByRole("button", { name: "Search", exact: true }).click();
        await page.getByRole("button", { name: "fleet-099999", exact: true }).waitFor();
        assert.equal(await page.getByRole("table", { name: "Individual enrollments" }).locator("tbody tr").count(), 10);
        assert.ok(pageSizes.length >= 3 && pageSizes.every((s) => s === "50"), pageSizes.join(","));
      });
    } finally {
      await context.close();
    }
  });
});

describe("console sign-in through an OpenID Connect issuer", () => {
  let p: ProvisioProcess;
  let issuer: TestIssuer;
  let browser: Browser;
  before(async () => {
    issuer = await startIssuer();
    [p, browser] = await Promise.all([
      startProvisio({
        env: { PROVISIO_OIDC_ISSUER: issuer.url, PROVISIO_OIDC_CONSOLE_CLIENT_ID: "provisio-console" },
      }),
      launchChromium(),
    ]);
  });
  after(async () => {
    await browser?.close();
    await p?.dispose();
    await issuer?.close();
  });

  const issuerButton = () => `Sign in with ${new URL(issuer.url).host}`;

  test("a person with the Data Reader role signs in at the issuer and reads, without edit controls", async () => {
    await serviceClient(p).createOrUpdateIndividualEnrollment({
      registrationId: "oidc-console-1",
      attestation: { type: "symmetricKey" },
    } as unknown as Parameters<ReturnType<typeof serviceClient>["createOrUpdateIndividualEnrollment"]>[0]);
    issuer.signInAs({
      sub: "alice-0001",
      preferred_username: "alice@contoso.test",
      aud: "https://azure-devices-provisioning.net",
      roles: ["DeviceProvisioningService.DataReader"],
    });
    const context = await newConsoleContext(browser);
    const page = await context.newPage();
    try {
      await withScreenshots(page, "oidc reader", async () => {
        await page.goto(consoleUrl(p));
        await page.getByRole("button", { name: issuerButton() }).click();
        await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
        await page.getByText("Signed in as alice@contoso.test (read only)").waitFor();
        assert.doesNotMatch(page.url(), /code=/, "the single-use code leaves the address bar");
        await openBlade(page, "Enrollments");
        await page.getByRole("button", { name: "oidc-console-1" }).waitFor();
        assert.equal(await page.getByRole("button", { name: /^Add / }).count(), 0);
        // A reload keeps the session (the token is in this tab's storage), and signing out ends it.
        await page.reload();
        await page.getByRole("heading", { name: "Enrollments", level: 1 }).waitFor();
        await page.getByRole("button", { name: "Sign out" }).click();
        await page.getByRole("button", { name: issuerButton() }).waitFor();
      });
    } finally {
      await context.close();
    }
  });

  test("a refusal at the issuer is shown as the issuer worded it", async () => {
    issuer.signInAs(undefined);
    const context = await newConsoleContext(browser);
    const page = await context.newPage();
    try {
      await withScreenshots(page, "oidc refused", async () => {
        await page.goto(consoleUrl(p));
        await page.getByRole("button", { name: issuerButton() }).click();
        await page
          .getByRole("alert")
          .getByText(/The issuer refused the sign-in: the user declined/)
          .waitFor();
      });
    } finally {
      await context.close();
    }
  });

  test("a console client id without an issuer is refused at start", async () => {
    await assert.rejects(
      startProvisio({ env: { PROVISIO_OIDC_CONSOLE_CLIENT_ID: "provisio-console" } }),
      /--oidc-console-client-id .* give the issuer with --oidc-issuer/,
    );
  });
});
