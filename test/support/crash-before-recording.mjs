// Preloaded (`node --import`) into a bridged sidecar under test: the process SIGKILLs itself just as it
// would record in reported.json progress past the start, i.e. after the orchestrator acknowledged those
// lines' events and before the record lands. That is the window a crashed sidecar container leaves.
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";

const rename = fs.promises.rename;
fs.promises.rename = async (from, to) => {
  if (String(to).endsWith("reported.json") && JSON.parse(fs.readFileSync(from, "utf8")).offset > 0) process.kill(process.pid, "SIGKILL");
  return rename(from, to);
};
// `import { rename } from "node:fs/promises"` in the sidecar sees the replacement too.
syncBuiltinESMExports();
