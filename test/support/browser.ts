// A real browser for the console's tests: Debian's Chromium (installed here when missing),
// driven by playwright-core, headless. Screenshots of every blade are written when a test fails.
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { ensureDebianPackages } from "./debian-packages.js";
import type { ProvisioProcess } from "./provisio-process.js";

const CHROMIUM = "/usr/bin/chromium";
const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
/** Where failing tests leave their screenshots (ignored by git). */
export const SCREENSHOTS = join(root, "test-results", "console");

export const BLADE_NAMES = [
  "Overview",
  "Enrollments",
  "Registrations",
  "Certificates",
  "Linked hubs",
  "Access policies",
  "Networking",
  "Metrics",
  "Logs",
  "Built-in hubs",
] as const;

export async function launchChromium(): Promise<Browser> {
  ensureDebianPackages("Chromium", () => existsSync(CHROMIUM), ["chromium"]);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // As root there is no sandbox; the rest keeps Chromium off the (closed) network.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A fresh context (its own sessionStorage) that accepts the test server's development CA. */
export async function newConsoleContext(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
}

export const consoleUrl = (p: ProvisioProcess): string => `https://localhost:${p.info.ports.https}/`;

/** Opens the console and signs in; resolves once the Overview is shown. */
export async function signIn(page: Page, p: ProvisioProcess, connectionString = p.info.serviceConnectionString) {
  page.on("dialog", (d) => void d.accept()); // the console's confirm() before deletes
  await page.goto(consoleUrl(p));
  await page.getByLabel("Connection string").fill(connectionString);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
}

export async function openBlade(page: Page, name: (typeof BLADE_NAMES)[number]): Promise<void> {
  await page.getByRole("navigation", { name: "Blades" }).getByRole("link", { name, exact: true }).click();
  await page.getByRole("heading", { name, level: 1 }).waitFor();
}

/**
 * Runs `body`; when it throws, writes a screenshot of the page as it was and then of every blade
 * (`test-results/console/{test}-….png`) before rethrowing.
 */
export async function withScreenshots(page: Page, test: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const base = join(SCREENSHOTS, test.replace(/[^a-z0-9]+/gi, "-").toLowerCase());
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: `${base}-failed.png`, fullPage: true }).catch(() => undefined);
    for (const name of BLADE_NAMES) {
      await page.keyboard.press("Escape").catch(() => undefined);
      await openBlade(page, name)
        .then(() => page.waitForTimeout(300))
        .then(() => page.screenshot({ path: `${base}-${name.replace(/ /g, "-").toLowerCase()}.png`, fullPage: true }))
        .catch(() => undefined);
    }
    throw err;
  }
}
