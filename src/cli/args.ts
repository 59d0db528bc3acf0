import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A command line that does not fit its command: printed with the usage, exit status 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses one command's arguments with node's own parser, strictly: an unknown flag (a typo like
 * `--ful`) or a missing value is refused with the usage, never silently ignored.
 */
export function parse<O extends Options>(args: string[], options: O, usage: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message, usage);
  }
}
