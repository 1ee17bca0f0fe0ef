// Property names that are safe to shorten in the bundle: names that the type checker shows
// are only ever TypeScript `private` class members of src/. A name that also appears as a
// public member, an interface field, an object-literal key, a JSON field or a property of
// anything outside src/ (Node's API, the addon) is left alone, so mangling cannot change a
// contract, an option object handed to Node, or a line of output.
import ts from 'typescript';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));

export function privateNames() {
  const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  const program = ts.createProgram({ rootNames: config.fileNames.filter((f) => f.startsWith(join(root, 'src') + '/')), options: config.options });
  const checker = program.getTypeChecker();
  const srcFiles = program.getSourceFiles().filter((f) => f.fileName.startsWith(join(root, 'src')));
  const isPrivateDecl = (d) =>
    (ts.isPropertyDeclaration(d) || ts.isMethodDeclaration(d) || ts.isGetAccessor(d) || ts.isSetAccessor(d) || ts.isParameter(d)) &&
    (ts.getCombinedModifierFlags(d) & ts.ModifierFlags.Private) !== 0 &&
    !ts.isPrivateIdentifier(d.name);
  const privateUse = new Set();
  const otherUse = new Set();
  const note = (name, decls) => {
    if (!decls || decls.length === 0) return otherUse.add(name);
    if (decls.every((d) => isPrivateDecl(d) && d.getSourceFile().fileName.startsWith(join(root, 'src')))) privateUse.add(name);
    else otherUse.add(name);
  };
  for (const sf of srcFiles) {
    const visit = (node) => {
      if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.name)) {
        note(node.name.text, checker.getSymbolAtLocation(node.name)?.declarations);
      } else if ((ts.isPropertyDeclaration(node) || ts.isMethodDeclaration(node) || ts.isPropertySignature(node) || ts.isMethodSignature(node) ||
                 ts.isPropertyAssignment(node) || ts.isShorthandPropertyAssignment(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node)) &&
                 node.name && (ts.isIdentifier(node.name) || ts.isStringLiteral(node.name))) {
        if (isPrivateDecl(node)) privateUse.add(node.name.text);
        else otherUse.add(node.name.text);
      } else if (ts.isParameter(node) && ts.isIdentifier(node.name) && ts.getCombinedModifierFlags(node) & ts.ModifierFlags.ParameterPropertyModifier) {
        (isPrivateDecl(node) ? privateUse : otherUse).add(node.name.text);
      } else if (ts.isElementAccessExpression(node) && ts.isStringLiteral(node.argumentExpression)) {
        otherUse.add(node.argumentExpression.text);
      } else if (ts.isBindingElement(node)) {
        const n = node.propertyName ?? node.name;
        if (ts.isIdentifier(n)) otherUse.add(n.text);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return [...privateUse].filter((n) => !otherUse.has(n) && n.length > 2).sort();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const names = privateNames();
  console.log(`${names.length} names: ${names.join(' ')}`);
}
