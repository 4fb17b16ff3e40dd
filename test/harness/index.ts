export { clamdCommand, type ClamdServer, EICAR, EICAR_SIGNATURE_NAME, startClamd, type StartClamdOptions } from "./clamd.js";
export { freePort, LOOPBACK, portOpen } from "./ports.js";
export { pingRedis, type RedisServer, startRedis, type StartRedisOptions } from "./redis.js";
export { requireTool } from "./require.js";
export { s3Env, type S3Server, startS3 } from "./s3.js";
export { type ExitStatus, makeTempDir, type ManagedProcess, removeTempDir, spawnManaged, waitUntilReady } from "./process.js";
export { ffmpegFromTestSources } from "./test-media.js";
export { launchChromium } from "./chromium.js";
