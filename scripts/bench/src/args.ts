// A small argv parser for the bench: `--name value`, `--flag`, repeatable options collected.

export class BenchArgs {
  readonly positional: string[] = [];
  private readonly values = new Map<string, string[]>();
  private readonly flags = new Set<string>();

  constructor(argv: string[], flagNames: ReadonlySet<string>) {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      if (!a.startsWith('--')) {
        this.positional.push(a);
        continue;
      }
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (flagNames.has(name)) {
        this.flags.add(name);
        continue;
      }
      const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value`);
      this.values.set(name, [...(this.values.get(name) ?? []), value]);
    }
  }

  flag(name: string): boolean {
    return this.flags.has(name);
  }

  str(name: string): string | undefined {
    const v = this.values.get(name);
    return v?.[v.length - 1];
  }

  all(name: string): string[] {
    return this.values.get(name) ?? [];
  }

  num(name: string, fallback: number): number {
    const v = this.str(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${v}`);
    return n;
  }

  names(): string[] {
    return [...this.values.keys(), ...this.flags];
  }
}
