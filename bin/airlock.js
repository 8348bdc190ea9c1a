#!/usr/bin/env node
// The CLI is compiled to dist/ by `npm run build`; this shim keeps the bin path stable.
import "../dist/cli/main.js";
