// (Placed at the top of dist/cic-runtime.js by scripts/build.mjs; plain JavaScript.)
// Compile cache, Node >= 22: V8's compiled code for this file is kept on disk, so a device
// does not compile the bundle again at every boot. module.enableCompileCache() only applies
// to modules loaded after it, and this file is already being compiled when it runs: so the
// entry enables the cache, then loads this same file once more as a module (the reload is
// the one that runs; require.main.filename === __filename tells src/cli.ts so) and stops.
// The directory: $CIC_COMPILE_CACHE ("off" disables), else systemd's $CACHE_DIRECTORY,
// else $XDG_CACHE_HOME or ~/.cache, under cic-runtime/. A directory that cannot be written
// turns the cache off; nothing here may fail a start.
if (require.main === module) {
  let enabled = false;
  try {
    const M = require('node:module');
    const env = process.env;
    const choice = env.CIC_COMPILE_CACHE;
    if (typeof M.enableCompileCache === 'function' && choice !== 'off') {
      const home = env.HOME && env.HOME !== '/' ? `${env.HOME}/.cache` : undefined;
      const base = choice || (env.CACHE_DIRECTORY || env.XDG_CACHE_HOME || home || '').split(':')[0];
      const dir = base && (choice ? base : `${base}/cic-runtime`);
      // Checked here, one level at a time: Node's recursive mkdir (inside enableCompileCache
      // too) spins forever on a path under a pseudo-filesystem such as /proc/x.
      const fs = require('node:fs');
      let writable = false;
      if (dir) {
        try {
          fs.accessSync(dir, fs.constants.W_OK);
          writable = fs.statSync(dir).isDirectory();
        } catch {
          try {
            fs.mkdirSync(dir, 0o700);
            writable = true;
          } catch {
            writable = false;
          }
        }
      }
      if (writable) {
        const r = M.enableCompileCache(dir);
        const S = M.constants && M.constants.compileCacheStatus;
        enabled = !!(S && r && (r.status === S.ENABLED || r.status === S.ALREADY_ENABLED));
      }
    }
  } catch {
    enabled = false;
  }
  if (enabled) {
    delete require.cache[__filename];
    require(__filename);
    return;
  }
}
