// dist/cjs holds CommonJS in a package whose .js files are ES modules: say so where they are.
import { writeFileSync } from "node:fs";
writeFileSync(new URL("../dist/cjs/package.json", import.meta.url), JSON.stringify({ type: "commonjs" }) + "\n");
