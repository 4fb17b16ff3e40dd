/** The API keys the permission matrices call with, one per role; "none" sends no credential. */
export const keys = {
  consumer: "key-consumer-0123456789",
  producer: "key-producer-0123456789",
  admin: "key-admin-000123456789",
} as const;

export type Caller = "none" | keyof typeof keys;

export const callers: readonly Caller[] = ["none", "consumer", "producer", "admin"];
