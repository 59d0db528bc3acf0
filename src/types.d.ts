declare module 'node-svn-ultimate' {
  type Callback = (err: Error | null, data?: unknown) => void;
  const svnUltimate: {
    commands: {
      mkdir(targets: string[], options: Record<string, unknown>, cb: Callback): void;
      info(target: string, options: Record<string, unknown>, cb: Callback): void;
    };
  };
  export default svnUltimate;
}
