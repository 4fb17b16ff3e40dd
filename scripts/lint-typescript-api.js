// typescript-eslint parses with TypeScript's JavaScript API, which TypeScript 7 (the native compiler the
// project type-checks with) no longer ships. Until typescript-eslint supports TypeScript 7, its
// `require("typescript")` is pointed at @typescript/typescript6, the 6.0 API published for tools like it;
// `tsc` and everything else keep resolving `typescript` to 7. Imported first by eslint.config.js.
import { registerHooks } from "node:module";

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === "typescript" && /[\\/]node_modules[\\/](@typescript-eslint|typescript-eslint|ts-api-utils)[\\/]/.test(context.parentURL ?? "")) {
      return nextResolve("@typescript/typescript6", context);
    }
    return nextResolve(specifier, context);
  },
});
