/** The API keys the permission matrices call with, one per role; "none" sends no credential. */
export const keys = {
  consumer: "key-consumer-0123456789",
  producer: "key-producer-0123456789",
  admin: "key-admin-000123456789",
} as const;

export type Caller = "none" | keyof typeof keys;

export const callers: readonly Caller[] = ["none", "consumer", "producer", "admin"];

/** The workspace every matrix key belongs to. */
export const keysWorkspace = "acme";

/** `MENTATLAB_API_KEYS` entries for `keys`, one user per role, all in `keysWorkspace`. */
export const keyEntries: readonly string[] = [
  `${keys.consumer}=carl@${keysWorkspace}:multimodal_consumer`,
  `${keys.producer}=pat@${keysWorkspace}:multimodal_producer`,
  `${keys.admin}=ada@${keysWorkspace}:admin`,
];
