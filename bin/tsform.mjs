#!/usr/bin/env node
// tsform ships TypeScript sources and runs them through tsx, so a fresh clone needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
