// ESLint guards the package map (README, "Architecture"): which folder may import which, and no import
// cycles. Type checking stays with `tsc`; formatting with prettier. `bash scripts/check.sh` runs it.
import "./scripts/lint-typescript-api.js";
import { createNodeResolver, importX } from "eslint-plugin-import-x";
import tseslint from "typescript-eslint";

/** Test code and test support: free to reach anything it needs to set up real parts. */
const testCode = ["**/*.test.ts", "**/*.conformance.ts", "**/testing.ts", "test/**", "bench/**", "deploy/validate/**", "examples/**", "scripts/**"];

/** The services that are neither the bottom layers nor a composition root. */
const services = ["gateway", "orchestrator", "registry", "storage", "stream", "webhook"];

/**
 * What each service may import of another service, besides services/shared, services/server,
 * agent-contract and gen/ (which every service may use): the other service's public entry point
 * (its index.ts) and nothing else. services/mesh and services/cli are composition roots and import anything.
 */
const serviceEntries = {
  gateway: ["services/stream/index.ts"],
  // flow-parse.ts is bundled into the web UI too: it takes the browser-safe leaves it needs, where
  // index.ts would bring the agent stores (node:sqlite, ioredis) into the bundle.
  orchestrator: [
    "services/registry/index.ts",
    "services/registry/document-reader.ts",
    "services/registry/violations.ts",
    "services/registry/names.ts",
    "services/registry/quantity.ts",
  ],
  webhook: ["services/orchestrator/kubernetes/index.ts"],
};

const message = (what) => `${what} (the package map is in README.md, "Architecture"; the rules in eslint.config.js)`;

/** Tests, tools and examples: production code never imports them. */
const outsideProduction = ["test/**", "bench/**", "examples/**", "deploy/**", "scripts/**"];

/** `from` paths of everything above the shared layers, for zones whose target must not reach up. */
const aboveShared = ["agent-sidecar/**", "sdk/**", "web/**", "bin/**", "services/!(shared)/**", ...outsideProduction];

const zones = [
  {
    target: "services/shared/**",
    from: ["agent-contract/**", ...aboveShared],
    message: message("services/shared is the bottom layer: it imports only gen/ and itself"),
  },
  {
    target: "agent-contract/**",
    from: ["services/**", "agent-sidecar/**", "sdk/**", "web/**", "bin/**", ...outsideProduction],
    message: message("agent-contract sits below the orchestrator and the sidecar: it imports only gen/ and itself"),
  },
  {
    target: "services/server/**",
    from: ["agent-contract/**", "agent-sidecar/**", "sdk/**", "web/**", "bin/**", "services/!(server|shared)/**", ...outsideProduction],
    message: message("services/server imports only services/shared and gen/"),
  },
  ...services.map((svc) => ({
    target: `services/${svc}/**`,
    from: ["agent-sidecar/**", "sdk/**", "web/**", "bin/**", "services/mesh/**", "services/cli/**", ...outsideProduction],
    message: message(`services/${svc} never imports a composition root, the sidecar, the SDK, the web UI or test code`),
  })),
  ...services.flatMap((svc) =>
    services
      .filter((other) => other !== svc)
      .map((other) => ({
        target: `services/${svc}/**`,
        from: `services/${other}`,
        except: (serviceEntries[svc] ?? []).filter((entry) => entry.startsWith(`services/${other}/`)).map((entry) => entry.slice(`services/${other}/`.length)),
        message: message(`services/${svc} reaches services/${other} only through the entry points listed in eslint.config.js`),
      })),
  ),
  {
    target: "agent-sidecar/**",
    from: ["services/!(shared)/**", "sdk/**", "web/**", "bin/**", ...outsideProduction],
    message: message("the sidecar imports agent-contract, services/shared and gen/, never the control plane"),
  },
  {
    target: "sdk/**",
    from: ["services/!(shared)/**", "agent-sidecar/**", "agent-contract/**", "web/**", "bin/**", ...outsideProduction],
    message: message("the SDK imports services/shared and gen/ only: agents get it without the mesh"),
  },
  {
    target: "web/**",
    from: ["services/!(shared|storage|orchestrator)/**", "agent-sidecar/**", "sdk/**", "bin/**"],
    message: message("the web UI runs in a browser: it imports gen/, services/shared, storage/client and the flow parser"),
  },
  {
    target: "web/**",
    from: "services/storage",
    except: ["client"],
    message: message("the web UI imports only services/storage/client of the storage service"),
  },
  {
    target: "web/**",
    from: "services/orchestrator",
    except: ["flow-parse.ts"],
    message: message("the web UI imports only services/orchestrator/flow-parse.ts of the orchestrator"),
  },
];

export default [
  { ignores: ["node_modules/**", "gen/**", "web/dist/**", "proto-deps/**", "test-artifacts/**", ".mentatlab/**"] },
  {
    files: ["**/*.ts", "**/*.js", "**/*.mjs"],
    languageOptions: { parser: tseslint.parser, ecmaVersion: "latest", sourceType: "module" },
    plugins: { "import-x": importX },
    settings: {
      "import-x/extensions": [".ts", ".js", ".mjs"],
      "import-x/parsers": { "@typescript-eslint/parser": [".ts", ".js", ".mjs"] },
      "import-x/resolver-next": [createNodeResolver({ extensions: [".ts", ".js", ".mjs", ".json"], extensionAlias: { ".js": [".ts", ".js"] } })],
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "import-x/no-cycle": ["error", { ignoreExternal: true }],
    },
  },
  {
    files: ["**/*.ts", "**/*.js", "**/*.mjs"],
    ignores: testCode,
    rules: {
      "import-x/no-restricted-paths": ["error", { basePath: import.meta.dirname, zones }],
    },
  },
  {
    // Configuration is read at the composition root and handed down as typed config (services/shared/env.ts).
    files: ["services/**", "agent-sidecar/**", "agent-contract/**"],
    ignores: [...testCode, "services/mesh/**", "services/cli/**", "agent-sidecar/main.ts"],
    rules: {
      "no-restricted-properties": [
        "error",
        {
          object: "process",
          property: "env",
          message: "read the environment at the composition root (services/mesh, services/cli, agent-sidecar/main.ts) and pass typed config down",
        },
      ],
    },
  },
];
