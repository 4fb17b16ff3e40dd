// Running vitest directly (not through `npm test`) skips the pretest check; repeat it here so a
// suite never runs, and fails confusingly, on the system Node.
const required = 24;
const major = Number(process.versions.node.split(".")[0]);
if (major !== required) {
  throw new Error(`Tests need Node ${required}.x (the pinned \`node\` devDependency); this is ${process.versions.node}. ` + "Run `npm ci` and use `npm test`.");
}
