#!/usr/bin/env node
// Entry point for the installed `edgefed` command: registers the TypeScript loader, then runs the CLI.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/main.ts');
