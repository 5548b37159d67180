// Waiting for something another process does (a node hearing a change, settling a hub intent).

/** Checks every 50 ms until `check` holds; resolves to the milliseconds it took, throws after `ms`. */
export async function until(check: () => Promise<boolean>, ms: number, what = "the condition"): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - start;
}
