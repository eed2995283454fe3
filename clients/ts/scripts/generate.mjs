// Regenerates src/gen from the contract: the protobuf messages and service descriptors with
// `buf generate` (protoc-gen-es, from node_modules: see buf.gen.yaml), then the REST types
// from the gateway's OpenAPI document with openapi-typescript.
//
// The document is the one `director openapi` prints (what the gateway serves at
// /api/openapi.json). Give it with `--openapi FILE` (CI passes the file it has validated);
// without it, the script runs `cargo run -p director -- openapi` at the repository's root.
//
//   npm run generate [-- --openapi path/to/openapi.json]

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const root = resolve(here, "../..");

function run(command, args, options = {}) {
  execFileSync(command, args, { stdio: "inherit", cwd: here, ...options });
}

function openapiArgument() {
  const flag = process.argv.indexOf("--openapi");
  if (flag === -1) return undefined;
  const file = process.argv[flag + 1];
  if (!file) throw new Error("--openapi needs a file");
  return resolve(process.cwd(), file);
}

run("buf", ["generate", "--template", "buf.gen.yaml"]);

let document = openapiArgument();
let scratch;
if (!document) {
  scratch = mkdtempSync(join(tmpdir(), "director-openapi-"));
  document = join(scratch, "openapi.json");
  const printed = execFileSync("cargo", ["run", "--quiet", "-p", "director", "--", "openapi"], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 * 1024 * 1024,
  });
  writeFileSync(document, printed);
}
try {
  run(join(here, "node_modules/.bin/openapi-typescript"), [document, "--output", "src/gen/openapi.ts"]);
} finally {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}
