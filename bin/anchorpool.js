#!/usr/bin/env node
// The anchorpool command. The implementation is compiled TypeScript in build/lib/cli.
import { main, processIo } from '../build/lib/cli/main.js';

process.exitCode = await main(process.argv.slice(2), processIo());
