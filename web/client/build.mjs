// Builds Confab's browser client into ../dist (or the directory given as
// the first argument): the bundles of src/room.js and src/landing.js and a
// copy of static/. `web` embeds ../dist in the binary; the test command
// builds into a scratch directory and fails if it differs from ../dist.

import { build } from "esbuild";
import { cpSync, mkdirSync, readdirSync, rmSync, renameSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, "..", "dist"));

// @xmpp/resolve imports "./lib/dns.js" (node:dns) while its package.json
// only maps "./lib/dns" away for browsers; the page always names its
// WebSocket URL, so DNS resolution is never used: give it an empty module.
const noNodeDns = {
  name: "no-node-dns",
  setup(b) {
    b.onResolve({ filter: /^node:dns$/ }, () => ({ path: "node:dns", namespace: "empty" }));
    b.onLoad({ filter: /.*/, namespace: "empty" }, () => ({ contents: "export default {};" }));
  },
};

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });

await build({
  entryPoints: { room: join(here, "src/room.js"), landing: join(here, "src/landing.js") },
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["chrome110", "firefox115", "safari16"],
  minify: true,
  legalComments: "eof",
  sourcemap: false,
  outdir: join(out, "assets"),
  logLevel: "warning",
  plugins: [noNodeDns],
});

// Pages at the top of dist, everything else under assets/.
for (const name of readdirSync(join(here, "static"))) {
  const target = name.endsWith(".html") ? join(out, name) : join(out, "assets", name);
  cpSync(join(here, "static", name), target);
}
console.log(`built ${out}`);
