// The symmetric-key group each device last attested with, kept per node, so that its next
// registration tries that group first. Every group a device is tried against costs four HMACs
// (~20 µs), and a scope may hold 100 symmetric-key groups (behaviors.md §9): a device of the
// last group cost ~2 ms a registration. A hint only orders the search, it never decides: a group
// is still used only if its derived key signs the token.

export class GroupHints {
  readonly #groupOf = new Map<string, string>();

  /** `limit`: devices remembered; the oldest is forgotten first. */
  constructor(private readonly limit = 100_000) {}

  /** `groups` with the device's last group first; the same array when there is nothing to move. */
  order<G extends { readonly enrollmentGroupId: string }>(device: string, groups: readonly G[]): readonly G[] {
    const id = this.#groupOf.get(device);
    if (id === undefined) return groups;
    const i = groups.findIndex((g) => g.enrollmentGroupId === id);
    if (i <= 0) return groups;
    return [groups[i] as G, ...groups.slice(0, i), ...groups.slice(i + 1)];
  }

  remember(device: string, groupId: string): void {
    if (this.#groupOf.get(device) === groupId) return;
    this.#groupOf.delete(device);
    if (this.#groupOf.size >= this.limit) {
      const oldest = this.#groupOf.keys().next().value;
      if (oldest !== undefined) this.#groupOf.delete(oldest);
    }
    this.#groupOf.set(device, groupId);
  }
}
