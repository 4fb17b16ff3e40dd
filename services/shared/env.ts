/**
 * The configuration toolkit every service's config.ts reads its variables with, so a bad value fails
 * start-up the same way everywhere: a `ConfigError` naming the variable and what it allows, which the
 * CLI prints as one line.
 *
 * A variable that is unset, empty or only spaces takes its default: an operator blanking a variable
 * in a manifest means "the default", never 0.
 */

/** The environment a config reader sees: `process.env` at the composition root, a literal in tests. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * A variable set to a value it does not allow. The message names the variable and what it allows,
 * then either the value or, for a structured value too long to quote (JSON, lists), what is wrong in it.
 */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly allowed: string,
    readonly value: string,
    reason?: string,
  ) {
    super(`${variable} must be ${allowed}${reason === undefined ? `, not ${JSON.stringify(value)}` : `: ${reason}`}`);
    this.name = "ConfigError";
  }
}

/** The variable's value without surrounding spaces, or undefined when it is unset or blank. */
export function stringVar(env: Env, name: string): string | undefined {
  const trimmed = env[name]?.trim();
  return trimmed === "" ? undefined : trimmed;
}

export interface IntegerRange {
  readonly min?: number;
  readonly max?: number;
}

/** A safe integer within [min, max] (min defaults to 0). */
export function integerVar(env: Env, name: string, fallback: number, { min = 0, max }: IntegerRange = {}): number {
  const raw = stringVar(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || (max !== undefined && value > max)) {
    throw new ConfigError(name, integerRange(min, max), raw);
  }
  return value;
}

function integerRange(min: number, max: number | undefined): string {
  if (max !== undefined) return `an integer from ${min} to ${max}`;
  return min === 0 ? "a non-negative integer" : `an integer >= ${min}`;
}

/** A TCP port; 0 lets the system pick a free one. */
export function portVar(env: Env, name: string, fallback: number): number {
  const raw = stringVar(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65_535) throw new ConfigError(name, "a port number (0-65535)", raw);
  return value;
}

export interface NumberRange {
  /** Smallest value allowed. */
  readonly min?: number;
  /** The value must be above this. */
  readonly exclusiveMin?: number;
}

/** A finite number (fractions allowed) above the given bound. */
export function numberVar(env: Env, name: string, fallback: number, { min, exclusiveMin }: NumberRange = {}): number {
  const raw = stringVar(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || (min !== undefined && value < min) || (exclusiveMin !== undefined && value <= exclusiveMin)) {
    throw new ConfigError(name, numberRange(min, exclusiveMin), raw);
  }
  return value;
}

function numberRange(min: number | undefined, exclusiveMin: number | undefined): string {
  if (exclusiveMin === 0) return "a positive number";
  if (exclusiveMin !== undefined) return `a number above ${exclusiveMin}`;
  if (min !== undefined) return `a number >= ${min}`;
  return "a number";
}

/** One of a fixed set of words, compared exactly. */
export function choiceVar<const T extends string>(env: Env, name: string, choices: readonly T[], fallback: T): T {
  const raw = stringVar(env, name);
  if (raw === undefined) return fallback;
  const choice = choices.find((c) => c === raw);
  if (choice === undefined) throw new ConfigError(name, `one of ${choices.join(", ")}`, raw);
  return choice;
}
