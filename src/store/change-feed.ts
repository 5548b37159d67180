// In-process notice that an instance's enrollments, groups or linked hubs changed, so caches on
// the registration hot path drop what they hold for that scope. Other nodes rely on cache expiry.
export type ChangeListener = (idScope: string) => void;

export class ChangeFeed {
  readonly #listeners: ChangeListener[] = [];

  subscribe(listener: ChangeListener): void {
    this.#listeners.push(listener);
  }

  changed(idScope: string): void {
    for (const l of this.#listeners) l(idScope);
  }
}
