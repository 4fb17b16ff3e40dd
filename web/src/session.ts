const storageKey = "mentatlab.apiKey";

/** The API key the user pasted, kept in this browser's localStorage only. */
export const session = {
  key(): string | undefined {
    return localStorage.getItem(storageKey) ?? undefined;
  },
  save(key: string): void {
    localStorage.setItem(storageKey, key);
  },
  clear(): void {
    localStorage.removeItem(storageKey);
  },
};
