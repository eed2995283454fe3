// Bundles page.ts (and the client code it imports from ../src) into dist/page.js for the
// browser, with esbuild: one ES module, no network at run time.
//
// The generated descriptors in ../src/gen import @bufbuild/protobuf; a bare import from there
// would resolve in ../node_modules when clients/ts has its own packages installed, and the
// bundle would carry two copies of the runtime. Every package is therefore resolved from this
// folder, so the page runs on exactly the versions pinned in this package-lock.json.

import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = fileURLToPath(new URL(".", import.meta.url));

/** Resolves every bare (package) import from this folder's node_modules. */
const packagesFromHere = {
  name: "packages-from-here",
  setup(build) {
    build.onResolve({ filter: /^@?[a-z]/ }, (args) => {
      if (args.pluginData?.fromHere) return undefined;
      return build.resolve(args.path, {
        kind: args.kind,
        resolveDir: here,
        pluginData: { fromHere: true },
      });
    });
  },
};

await esbuild.build({
  entryPoints: [`${here}page.ts`],
  outfile: `${here}dist/page.js`,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "chrome120",
  plugins: [packagesFromHere],
  logLevel: "warning",
});
