// Static check of the naming conventions behind property mangling (rollup.config.mjs):
// terser renames every property whose name starts with "_", and every name in
// INTERNAL_PROPERTIES, to a short one, consistently across the image. That is safe only
// for names private to the image, so:
//   1. a `private` class member is named _x (or it would not be mangled, and cost bytes);
//   2. a public class member, or anything declared for a runtime (*.d.ts), is not named _x;
//   3. no string literal holds an _x name (a dynamic lookup, or JSON, would break);
//   4. a name in INTERNAL_PROPERTIES is used only as a member of the firmware's own
//      interfaces and classes: never declared by a runtime (*.d.ts) or the standard library, never in
//      a string, never a key of an object literal that no firmware interface types (JSON).
// Every finding names the file, the line and the rule.
//
//   tsx tools/check/check-names.ts [files...]     (default: firmware/**/*.ts)

import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { INTERNAL_PROPERTIES } from "../../rollup.config.mjs";

export interface NameFinding {
  file: string;
  line: number;
  problem: string;
}

const PRIVATE_NAME = /^_[A-Za-z0-9_$]+$/;

function memberName(node: ts.ClassElement | ts.TypeElement): string | null {
  const name = node.name;
  if (name === undefined) return null;
  if (ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isPrivateIdentifier(name)) return name.text;
  return null;
}

function isPrivateMember(node: ts.ClassElement): boolean {
  const modifiers = ts.canHaveModifiers(node) ? ts.getModifiers(node) : undefined;
  return modifiers !== undefined && modifiers.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword);
}

/** Findings for one source file's text. */
export function checkNames(file: string, text: string): NameFinding[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2019, true);
  const findings: NameFinding[] = [];
  const report = (node: ts.Node, problem: string) => {
    findings.push({ file, line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1, problem });
  };
  const declarationFile = file.endsWith(".d.ts");
  const visit = (node: ts.Node) => {
    if (ts.isClassLike(node)) {
      for (const member of node.members) {
        if (ts.isConstructorDeclaration(member)) continue;
        const name = memberName(member);
        if (name === null) continue;
        if (ts.isPrivateIdentifier(member.name!)) report(member, "#" + name + ": use `private _" + name + "` (Espruino has no #private fields)");
        else if (isPrivateMember(member) && !PRIVATE_NAME.test(name)) report(member, "private member " + name + " must be named _" + name + " so the build mangles it");
        else if (!isPrivateMember(member) && PRIVATE_NAME.test(name)) report(member, "public member " + name + ": names starting with _ are mangled, so they must be private");
      }
    }
    if (declarationFile && (ts.isPropertySignature(node) || ts.isMethodSignature(node) || ts.isPropertyDeclaration(node) || ts.isMethodDeclaration(node))) {
      const name = memberName(node as ts.TypeElement);
      if (name !== null && PRIVATE_NAME.test(name)) report(node, "runtime API member " + name + " starts with _, which the build would mangle");
    }
    if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && PRIVATE_NAME.test(node.text) && !ts.isImportDeclaration(node.parent)) {
      report(node, "string \"" + node.text + "\": names starting with _ are mangled, so they cannot be looked up by string or sent as JSON");
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return findings;
}

/** Whether every declaration of `symbol` is a member of an interface or class in the firmware's own (non-.d.ts) sources. */
function declaredByFirmware(symbol: ts.Symbol | undefined, inFirmware: (file: ts.SourceFile) => boolean): boolean {
  const declarations = symbol?.declarations;
  if (!declarations || declarations.length === 0) return false;
  return declarations.every(
    (d) =>
      inFirmware(d.getSourceFile()) &&
      (((ts.isPropertySignature(d) || ts.isMethodSignature(d)) && ts.isInterfaceDeclaration(d.parent)) ||
        ((ts.isPropertyDeclaration(d) || ts.isMethodDeclaration(d)) && ts.isClassDeclaration(d.parent)))
  );
}

/**
 * Rule 4 over a whole program (it needs the type checker): every use of a name in
 * `internal` in `files` must resolve to a member of a firmware interface or class.
 */
export function checkInternalNames(files: string[], internal: readonly string[]): NameFinding[] {
  const names = new Set(internal);
  const program = ts.createProgram(files, { target: ts.ScriptTarget.ES2019, strict: true, noEmit: true, types: [], lib: ["lib.es2019.d.ts"], skipLibCheck: true });
  const checker = program.getTypeChecker();
  const wanted = new Set(files.map((f) => resolve(f)));
  const inFirmware = (file: ts.SourceFile) => wanted.has(resolve(file.fileName)) && !file.isDeclarationFile;
  const findings: NameFinding[] = [];
  for (const source of program.getSourceFiles()) {
    if (!wanted.has(resolve(source.fileName))) continue;
    const file = relative(process.cwd(), source.fileName) || source.fileName;
    const report = (node: ts.Node, problem: string) => {
      findings.push({ file, line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1, problem });
    };
    const visit = (node: ts.Node) => {
      if (source.isDeclarationFile) {
        if (ts.isPropertySignature(node) || ts.isMethodSignature(node) || ts.isPropertyDeclaration(node) || ts.isMethodDeclaration(node)) {
          const name = memberName(node as ts.TypeElement);
          if (name !== null && names.has(name)) report(node, "runtime API member " + name + " is in INTERNAL_PROPERTIES, which the build mangles");
        }
      } else if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && names.has(node.text) && !ts.isImportDeclaration(node.parent) && !ts.isLiteralTypeNode(node.parent)) {
        report(node, "string \"" + node.text + "\": " + node.text + " is in INTERNAL_PROPERTIES, so it cannot be looked up by string or sent as JSON");
      } else if (ts.isPropertyAccessExpression(node) && names.has(node.name.text)) {
        if (!declaredByFirmware(checker.getSymbolAtLocation(node.name), inFirmware)) {
          report(node.name, "." + node.name.text + " is not a member of a firmware interface or class here (a runtime API, the standard library or untyped data), but INTERNAL_PROPERTIES mangles it");
        }
      } else if ((ts.isPropertyAssignment(node) || ts.isShorthandPropertyAssignment(node) || ts.isMethodDeclaration(node)) && ts.isObjectLiteralExpression(node.parent) && node.name && ts.isIdentifier(node.name) && names.has(node.name.text)) {
        const contextual = checker.getContextualType(node.parent);
        const member = contextual ? checker.getPropertyOfType(contextual, node.name.text) : undefined;
        if (!declaredByFirmware(member, inFirmware)) {
          report(node.name, "key " + node.name.text + " of an object literal that no firmware interface types (it may become JSON or go to a runtime), but INTERNAL_PROPERTIES mangles it");
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return findings;
}

/** Every .ts file under `dir`, declaration files included. */
export function firmwareFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return firmwareFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

export function checkFiles(files: string[]): NameFinding[] {
  return files.flatMap((file) => checkNames(relative(process.cwd(), file) || file, readFileSync(file, "utf8")));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(fileURLToPath(import.meta.url), "../../..");
  const args = process.argv.slice(2);
  const files = args.length > 0 ? args.map((f) => resolve(f)) : firmwareFiles(join(root, "firmware"));
  const findings = [...checkFiles(files), ...checkInternalNames(files, INTERNAL_PROPERTIES)];
  for (const f of findings) console.error(f.file + ":" + f.line + ": " + f.problem);
  if (findings.length > 0) {
    console.error(findings.length + " naming problem(s): see rollup.config.mjs (PRIVATE_PROPERTIES, INTERNAL_PROPERTIES) for why");
    process.exit(1);
  }
  console.log("ok   names in " + files.length + " firmware files (private members are _x, nothing else is; the " + INTERNAL_PROPERTIES.length + " internal names are only firmware interface and class members)");
}
