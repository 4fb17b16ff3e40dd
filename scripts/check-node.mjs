// npm runs scripts on the Node binary that the pinned `node` devDependency puts in node_modules/.bin.
// When that binary is missing (npm ci --ignore-scripts, or no npm ci at all) scripts silently fall back
// to the system Node, which the current Connect, vitest and protoc-gen-es releases no longer support.
const required = 24;
const major = Number(process.versions.node.split(".")[0]);
if (major !== required) {
  console.error(
    `MentatLab needs Node ${required}.x but this is Node ${process.versions.node}.\n` +
      `Run \`npm ci\` (without --ignore-scripts) so the pinned node@${required} package installs its binary ` +
      `into node_modules/.bin, then run npm scripts again.`,
  );
  process.exit(1);
}
