// The runtime's version, injected by the bundler from package.json (tests read it directly).
declare const __CIC_VERSION__: string | undefined;

export const RUNTIME_VERSION: string =
  typeof __CIC_VERSION__ === 'string' ? __CIC_VERSION__ : (require('../package.json') as { version: string }).version;
