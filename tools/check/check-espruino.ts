// Static check of Espruino images against ../shared/reference/espruino-runtime.md and
// what was measured on the interpreter: Espruino parses lazily (a syntax error shows
// only when its function first runs), hoists neither functions nor vars, lacks many
// built-ins and looks up no Builtin.prototype.method. Every finding names the file, the
// line and the construct.
//
//   tsx tools/check/check-espruino.ts [files...]    (default: dist/espruino/*.js)

import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as acorn from "acorn";
import * as walk from "acorn-walk";
import { ESPRUINO_KEYWORDS } from "../build/shrink.mjs";
import { MISSING_GLOBALS, MISSING_METHODS, MISSING_STATICS } from "./espruino-builtins.ts";

export interface Finding {
  file: string;
  line: number;
  column: number;
  construct: string;
}

type AnyNode = acorn.Node & Record<string, any>;

/** Method names flagged on any receiver, since types are unknown here. */
const MISSING_METHOD_NAMES = Object.values(MISSING_METHODS).flat();

const BUILTIN_CONSTRUCTORS = [
  "Array", "String", "Object", "Function", "Number", "Boolean", "Date", "Error", "Promise", "RegExp",
  "ArrayBuffer", "DataView", "Uint8Array", "Int8Array", "Uint16Array", "Int16Array", "Uint32Array",
  "Int32Array", "Float32Array", "Float64Array", "Uint8ClampedArray",
];

function isFunction(node: AnyNode): boolean {
  return node.type === "FunctionDeclaration" || node.type === "FunctionExpression" || node.type === "ArrowFunctionExpression";
}

/** Names a pattern binds (identifiers only: destructuring is reported separately). */
function patternNames(node: AnyNode | null): AnyNode[] {
  if (!node) return [];
  if (node.type === "Identifier") return [node];
  if (node.type === "AssignmentPattern") return patternNames(node.left);
  if (node.type === "RestElement") return patternNames(node.argument);
  if (node.type === "ArrayPattern") return node.elements.flatMap((e: AnyNode | null) => patternNames(e));
  if (node.type === "ObjectPattern") return node.properties.flatMap((p: AnyNode) => patternNames(p.type === "RestElement" ? p : p.value));
  return [];
}

/** Identifiers that are references (not property names, keys or labels). */
function isReference(node: AnyNode, parent: AnyNode | undefined): boolean {
  if (!parent) return true;
  if ((parent.type === "MemberExpression") && parent.property === node && !parent.computed) return false;
  if ((parent.type === "Property" || parent.type === "MethodDefinition" || parent.type === "PropertyDefinition") && parent.key === node && !parent.computed) {
    return parent.type === "Property" && parent.shorthand;
  }
  if (parent.type === "LabeledStatement" || parent.type === "BreakStatement" || parent.type === "ContinueStatement") return false;
  if (parent.type === "ExportSpecifier" || parent.type === "ImportSpecifier" || parent.type === "MetaProperty") return false;
  return true;
}

interface ScopeDecl {
  name: string;
  kind: "function" | "var";
  position: number;
  node: AnyNode;
  /** For a var declared in an if branch, loop body, catch or case: the source range of that part. */
  region: [number, number] | null;
}

/**
 * Children of `node` in source order, as [child, parent] pairs; does not enter nested
 * functions when `stopAtFunctions` (their bodies run later, not in this scope's order).
 */
function visitOwnCode(
  root: AnyNode,
  visit: (node: AnyNode, parent: AnyNode | undefined, ancestors: AnyNode[]) => void,
  stopAtFunctions: boolean
): void {
  const ancestors: AnyNode[] = [];
  const recurse = (node: AnyNode) => {
    visit(node, ancestors[ancestors.length - 1], ancestors);
    if (stopAtFunctions && node !== root && isFunction(node)) return;
    ancestors.push(node);
    for (const key of Object.keys(node)) {
      if (key === "type" || key === "start" || key === "end" || key === "loc") continue;
      const value = node[key];
      if (Array.isArray(value)) {
        for (const child of value) if (child && typeof child.type === "string") recurse(child);
      } else if (value && typeof value.type === "string") recurse(value);
    }
    ancestors.pop();
  };
  recurse(root);
}

/** The part of `ancestors` that runs only sometimes (if branch, loop body, catch, case), innermost. */
function conditionalRegion(ancestors: AnyNode[], node: AnyNode): [number, number] | null {
  let child = node;
  for (let i = ancestors.length - 1; i >= 0; i--) {
    const a = ancestors[i];
    const conditional =
      (a.type === "IfStatement" && (child === a.consequent || child === a.alternate)) ||
      ((a.type === "ForStatement" || a.type === "ForInStatement" || a.type === "ForOfStatement" || a.type === "WhileStatement") && child === a.body) ||
      (a.type === "TryStatement" && child === a.handler) ||
      a.type === "SwitchCase";
    if (conditional) return a.type === "SwitchCase" ? [a.start, a.end] : [child.start, child.end];
    child = a;
  }
  return null;
}

/** Declarations that Espruino creates only when execution reaches them. */
function scopeDeclarations(scopeNode: AnyNode): Map<string, ScopeDecl> {
  const declarations = new Map<string, ScopeDecl>();
  const body = scopeNode.type === "Program" ? scopeNode : scopeNode.body;
  visitOwnCode(body, (node, _parent, ancestors) => {
    if (node === body) return;
    if (node.type === "FunctionDeclaration" && node.id && !declarations.has(node.id.name)) {
      declarations.set(node.id.name, { name: node.id.name, kind: "function", position: node.start, node, region: null });
    }
    if (node.type === "VariableDeclaration" && node.kind === "var") {
      const region = conditionalRegion(ancestors, node);
      for (const declarator of node.declarations) {
        for (const id of patternNames(declarator.id)) {
          if (!declarations.has(id.name)) declarations.set(id.name, { name: id.name, kind: "var", position: declarator.start, node: declarator, region });
        }
      }
    }
  }, true);
  return declarations;
}

/** Names a function's body (nested functions included) refers to, minus its own bindings. */
function freeNames(fn: AnyNode): Set<string> {
  const names = new Set<string>();
  const own = new Set<string>();
  for (const param of fn.params) for (const id of patternNames(param)) own.add(id.name);
  visitOwnCode(fn.body, (node, parent) => {
    if (node.type === "VariableDeclarator") for (const id of patternNames(node.id)) own.add(id.name);
    if (node.type === "FunctionDeclaration" && node.id) own.add(node.id.name);
    if (node.type === "Identifier" && isReference(node, parent)) names.add(node.name);
  }, false);
  for (const name of own) names.delete(name);
  return names;
}

function checkHoisting(program: AnyNode, report: (node: AnyNode, construct: string) => void): void {
  const scopes: AnyNode[] = [program];
  walk.full(program as acorn.Node, (node) => {
    if (isFunction(node as AnyNode) && (node as AnyNode).body.type === "BlockStatement") scopes.push(node as AnyNode);
  });
  for (const scope of scopes) {
    const declarations = scopeDeclarations(scope);
    if (declarations.size === 0) continue;
    const body = scope.type === "Program" ? scope : scope.body;
    // What each function declared in this scope may reach when called, transitively.
    const reachCache = new Map<string, Set<string>>();
    const reach = (name: string, seen: Set<string>): Set<string> => {
      const cached = reachCache.get(name);
      if (cached) return cached;
      const result = new Set<string>();
      const decl = declarations.get(name);
      if (!decl || decl.kind !== "function" || seen.has(name)) return result;
      seen.add(name);
      for (const free of freeNames(decl.node)) {
        if (declarations.has(free)) {
          result.add(free);
          for (const more of reach(free, seen)) result.add(more);
        }
      }
      reachCache.set(name, result);
      return result;
    };
    visitOwnCode(body, (node, parent) => {
      if (node.type !== "Identifier" || !isReference(node, parent)) return;
      if (parent && parent.type === "FunctionDeclaration" && parent.id === node) return;
      if (parent && parent.type === "VariableDeclarator" && parent.id === node) return;
      const decl = declarations.get(node.name);
      if (!decl) return;
      if (node.start < decl.position) {
        report(node, (decl.kind === "function" ? "call or use of function " : "use of var ") + node.name + " before its declaration has run (Espruino does not hoist)");
        return;
      }
      if (decl.region !== null && (node.start < decl.region[0] || node.start >= decl.region[1])) {
        report(node, "use of var " + node.name + " outside the block that declares it (Espruino creates it only if that block runs)");
        return;
      }
      if (parent && parent.type === "CallExpression" && parent.callee === node && decl.kind === "function") {
        for (const needed of reach(node.name, new Set())) {
          const target = declarations.get(needed)!;
          if (target.position > node.start) {
            report(node, "call to " + node.name + " reaches " + needed + " before its declaration has run (Espruino does not hoist)");
          }
        }
      }
    }, true);
  }
}

function checkLoopClosures(program: AnyNode, report: (node: AnyNode, construct: string) => void): void {
  walk.full(program as acorn.Node, (raw) => {
    const loop = raw as AnyNode;
    let declaration: AnyNode | null = null;
    if (loop.type === "ForStatement" && loop.init && loop.init.type === "VariableDeclaration") declaration = loop.init;
    if ((loop.type === "ForOfStatement" || loop.type === "ForInStatement") && loop.left.type === "VariableDeclaration") declaration = loop.left;
    if (!declaration || declaration.kind === "var") return;
    const names = new Set(declaration.declarations.flatMap((d: AnyNode) => patternNames(d.id)).map((id: AnyNode) => id.name));
    visitOwnCode(loop.body, (node) => {
      if (node === loop.body || !isFunction(node)) return;
      for (const free of freeNames(node)) {
        if (names.has(free)) report(node, "closure over the loop's " + declaration!.kind + " " + free + " (Espruino shares one binding: every closure sees the last value)");
      }
    }, false);
  });
}

export function checkSource(source: string, file: string): Finding[] {
  const findings: Finding[] = [];
  let program: AnyNode;
  try {
    program = acorn.parse(source, { ecmaVersion: 2022, sourceType: "script", locations: true }) as AnyNode;
  } catch (e) {
    const err = e as { message: string; loc?: { line: number; column: number } };
    return [{ file, line: err.loc?.line ?? 0, column: err.loc?.column ?? 0, construct: "does not parse: " + err.message }];
  }
  const seen = new Set<string>();
  const report = (node: AnyNode, construct: string) => {
    const key = node.start + ":" + construct;
    if (seen.has(key)) return;
    seen.add(key);
    findings.push({ file, line: node.loc!.start.line, column: node.loc!.start.column + 1, construct });
  };
  const declaredGlobals = new Set<string>();
  walk.full(program as acorn.Node, (raw) => {
    const node = raw as AnyNode;
    if (node.type === "VariableDeclarator") for (const id of patternNames(node.id)) declaredGlobals.add(id.name);
    if ((node.type === "FunctionDeclaration" || node.type === "ClassDeclaration") && node.id) declaredGlobals.add(node.id.name);
  });

  walk.fullAncestor(program as acorn.Node, (raw, _state, ancestors) => {
    const node = raw as AnyNode;
    const parent = ancestors[ancestors.length - 2] as AnyNode | undefined;
    switch (node.type) {
      case "AssignmentPattern":
        report(node, parent && isFunction(parent) ? "default parameter" : "default value in destructuring");
        break;
      case "ObjectPattern":
      case "ArrayPattern":
        report(node, "destructuring");
        break;
      case "SpreadElement":
        report(node, "spread (...)");
        break;
      case "RestElement":
        report(node, "rest parameter or element (...)");
        break;
      case "AwaitExpression":
        report(node, "await");
        break;
      case "YieldExpression":
        report(node, "yield (generator)");
        break;
      case "ChainExpression":
        report(node, "optional chaining (?.)");
        break;
      case "TaggedTemplateExpression":
        report(node, "tagged template");
        break;
      case "LabeledStatement":
        report(node, "labelled statement (labelled break/continue fail)");
        break;
      case "ThisExpression": {
        // The nearest enclosing function decides what `this` is: an arrow captures it.
        for (let i = ancestors.length - 2; i >= 0; i--) {
          const scope = ancestors[i] as AnyNode;
          if (scope.type === "ArrowFunctionExpression") {
            report(scope, "arrow function using this (2v29 corrupts memory when it skips such an arrow unexecuted, e.g. in a branch not taken; capture this in a const)");
            break;
          }
          if (isFunction(scope) || scope.type === "PropertyDefinition" || scope.type === "StaticBlock") break;
        }
        break;
      }
      case "MetaProperty":
        report(node, node.meta.name + "." + node.property.name);
        break;
      case "ImportExpression":
        report(node, "dynamic import()");
        break;
      case "BinaryExpression":
        if (node.operator === "**") report(node, "exponent operator (**)");
        break;
      case "AssignmentExpression":
        if (["**=", "??=", "||=", "&&="].includes(node.operator)) report(node, "assignment operator " + node.operator);
        if (node.left.type === "MemberExpression" && !node.left.computed && node.left.property.name === "length") {
          report(node, "assignment to .length (2v29 throws \"Assignment to a constant\"; use splice)");
        }
        break;
      case "Literal":
        if (node.regex) report(node, "RegExp literal /" + node.regex.pattern + "/" + node.regex.flags + " (Espruino's RegExp misbehaves silently)");
        if (typeof node.bigint === "string") report(node, "BigInt literal");
        break;
      case "Property":
      case "MethodDefinition":
      case "PropertyDefinition":
        if (node.computed) report(node, "computed key {[k]: v}");
        if (node.key && node.key.type === "PrivateIdentifier") report(node, "private class member #" + node.key.name);
        // Object literal keys and methods may be keywords; a class's may not.
        if (node.type !== "Property" && !node.computed && node.key.type === "Identifier" && ESPRUINO_KEYWORDS.includes(node.key.name)) {
          report(node, "class member named " + node.key.name + " (an Espruino keyword: the class does not parse)");
        }
        break;
      case "ClassDeclaration":
      case "ClassExpression":
        if (node.superClass && node.superClass.type === "Identifier" && /Error$/.test(node.superClass.name)) {
          report(node, "class extends " + node.superClass.name);
        }
        break;
      case "NewExpression":
      case "CallExpression":
        if (node.callee.type === "Identifier" && node.callee.name === "RegExp") report(node, "RegExp constructor");
        // Measured on 2v29: every element splice inserts leaves JsVars that only a garbage
        // collection frees (about 2-4 each), and Espruino collects only when memory runs short.
        if (node.type === "CallExpression" && node.arguments.length >= 3 && node.callee.type === "MemberExpression" && !node.callee.computed && node.callee.property.name === "splice") {
          report(node, ".splice() inserting elements (Espruino 2v29 leaves JsVars per inserted element that only a garbage collection frees; build a new array with slice and concat)");
        }
        break;
      case "MemberExpression": {
        if (node.computed || node.property.type !== "Identifier") break;
        const property = node.property.name;
        const object = node.object as AnyNode;
        if (object.type === "Identifier" && MISSING_STATICS[object.name]?.includes(property) && !declaredGlobals.has(object.name)) {
          report(node, object.name + "." + property + " (missing in Espruino)");
        }
        if (object.type === "MemberExpression" && !object.computed && object.property.name === "prototype" &&
            object.object.type === "Identifier" && BUILTIN_CONSTRUCTORS.includes(object.object.name) &&
            !(object.object.name === "Object" && property === "hasOwnProperty") &&
            !(parent && parent.type === "AssignmentExpression" && parent.left === node)) {
          report(node, object.object.name + ".prototype." + property + " lookup (undefined in Espruino; call it on an instance)");
        }
        if (MISSING_METHOD_NAMES.includes(property) && parent && parent.type === "CallExpression" && parent.callee === node) {
          report(node, "." + property + "() (missing in Espruino)");
        }
        break;
      }
      case "Identifier":
        if (MISSING_GLOBALS.includes(node.name) && isReference(node, parent) && !declaredGlobals.has(node.name)) {
          report(node, node.name + " (missing in Espruino)");
        }
        // `of`, `static`: names in JavaScript, keywords to Espruino's lexer.
        if (ESPRUINO_KEYWORDS.includes(node.name) && node.name !== "undefined" && isReference(node, parent)) {
          report(node, "the name " + node.name + " (an Espruino keyword: does not parse)");
        }
        break;
    }
    if (isFunction(node)) {
      if (node.async) report(node, "async function");
      if (node.generator) report(node, "generator function");
    }
    if (node.type === "ForOfStatement" && node.await) report(node, "for await");
  });
  checkHoisting(program, report);
  checkLoopClosures(program, report);
  findings.sort((a, b) => a.line - b.line || a.column - b.column);
  return findings;
}

export function formatFinding(f: Finding): string {
  return f.file + ":" + f.line + ":" + f.column + ": " + f.construct;
}

function cli(): void {
  const root = resolve(fileURLToPath(import.meta.url), "../../..");
  let files = process.argv.slice(2);
  if (files.length === 0) {
    const dir = join(root, "dist/espruino");
    let names: string[] = [];
    try {
      names = readdirSync(dir).filter((f) => f.endsWith(".js"));
    } catch {
      // reported below
    }
    if (names.length === 0) {
      console.error("check:espruino: no images in dist/espruino: run npm run build first");
      process.exit(1);
    }
    files = names.map((f) => join(dir, f));
  }
  let total = 0;
  for (const file of files) {
    const shown = relative(process.cwd(), file) || file;
    const findings = checkSource(readFileSync(file, "utf8"), shown);
    total += findings.length;
    for (const f of findings) console.log(formatFinding(f));
    console.log((findings.length === 0 ? "ok   " : "FAIL ") + shown + (findings.length ? " (" + findings.length + " findings)" : ""));
  }
  if (total > 0) process.exit(1);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) cli();
