// Puts the value of each of the bundle's top-level literal constants where it is used, before
// terser. Saved to flash, an Espruino image's code costs no RAM, but each top-level name
// does: the image's top level becomes the global scope (tools/build/shrink.mjs), where a
// `const CLAIM_TOPIC = "v1/devices/me/claim"` is a global variable and its string, three
// JsVars for the whole run. Written in the code instead, the string exists only while a
// call uses it. Terser keeps such a constant whenever the literal is longer than its name
// (a rule about bytes, not RAM), so this pass does it first.
//
// Only what is certainly the same program: a `const` of one string, number or boolean,
// declared at the top level of the bundle (or of rollup's iife) and nowhere else under that
// name, so that every identifier of that name means it.

import { parse } from "acorn";
import { fullAncestor } from "acorn-walk";
import { applyEdits } from "./shrink.mjs";

/** @typedef {{ type: string, start: number, end: number, [key: string]: any }} Node */

/** The statements at the top level: the program's, or those of rollup's iife wrapper. @param {Node} program */
function topLevel(program) {
  const body = program.body;
  if (body.length >= 1) {
    const last = body[body.length - 1];
    const call = last.type === "ExpressionStatement" ? (last.expression.type === "UnaryExpression" ? last.expression.argument : last.expression) : null;
    if (call && call.type === "CallExpression" && call.callee.type === "FunctionExpression" && body.every((/** @type {Node} */ s) => s === last || s.type === "ExpressionStatement" && s.directive)) {
      return call.callee.body.body;
    }
  }
  return body;
}

/** @param {Node} pattern @param {(id: Node) => void} found every identifier a binding pattern declares */
function bindingNames(pattern, found) {
  if (!pattern) return;
  if (pattern.type === "Identifier") found(pattern);
  else if (pattern.type === "ObjectPattern") for (const p of pattern.properties) bindingNames(p.type === "RestElement" ? p.argument : p.value, found);
  else if (pattern.type === "ArrayPattern") for (const e of pattern.elements) bindingNames(e, found);
  else if (pattern.type === "AssignmentPattern") bindingNames(pattern.left, found);
  else if (pattern.type === "RestElement") bindingNames(pattern.argument, found);
}

/**
 * @param {string} code the bundle, as rollup renders it
 * @returns {string} the same program without its top-level literal constants
 */
export function inlineConstants(code) {
  const program = /** @type {Node} */ (/** @type {unknown} */ (parse(code, { ecmaVersion: 2020, sourceType: "script", allowReturnOutsideFunction: true })));
  /** @type {Map<string, Node>} name -> its declaration statement */
  const candidates = new Map();
  for (const statement of topLevel(program)) {
    if (statement.type !== "VariableDeclaration" || statement.kind !== "const" || statement.declarations.length !== 1) continue;
    const declarator = statement.declarations[0];
    const init = declarator.init;
    if (declarator.id.type === "Identifier" && init && init.type === "Literal" && ["string", "number", "boolean"].includes(typeof init.value)) {
      candidates.set(declarator.id.name, statement);
    }
  }
  if (candidates.size === 0) return code;

  // Every declaration of each name, every name written to (an error for a const, which
  // TypeScript reports first; checked anyway), and every identifier that reads one.
  /** @type {Map<string, number>} */
  const declared = new Map();
  const declare = (/** @type {Node} */ id) => declared.set(id.name, (declared.get(id.name) ?? 0) + 1);
  /** @type {Set<string>} */
  const written = new Set();
  const write = (/** @type {Node} */ id) => written.add(id.name);
  /** @type {{ node: Node, shorthand: boolean }[]} */
  const uses = [];
  fullAncestor(/** @type {any} */ (program), (/** @type {Node} */ node, _state, /** @type {Node[]} */ ancestors) => {
    if (node.type === "VariableDeclarator") bindingNames(node.id, declare);
    else if (node.type === "AssignmentExpression" || node.type === "ForInStatement" || node.type === "ForOfStatement") bindingNames(node.left, write);
    else if (node.type === "UpdateExpression") bindingNames(node.argument, write);
    else if (node.type === "FunctionDeclaration" || node.type === "FunctionExpression" || node.type === "ArrowFunctionExpression") {
      if (node.id) declare(node.id);
      for (const param of node.params) bindingNames(param, declare);
    } else if ((node.type === "ClassDeclaration" || node.type === "ClassExpression") && node.id) declare(node.id);
    else if (node.type === "CatchClause" && node.param) bindingNames(node.param, declare);
    else if (node.type === "Identifier" && candidates.has(node.name)) {
      const parent = ancestors[ancestors.length - 2];
      // Not a reading: a property name, a method or field name, a label.
      if (parent.type === "MemberExpression" && parent.property === node && !parent.computed) return;
      if ((parent.type === "Property" || parent.type === "MethodDefinition" || parent.type === "PropertyDefinition") && parent.key === node && !parent.computed && !parent.shorthand) return;
      if ((parent.type === "LabeledStatement" || parent.type === "BreakStatement" || parent.type === "ContinueStatement") && parent.label === node) return;
      if (parent.type === "VariableDeclarator" && parent.id === node) return;
      uses.push({ node, shorthand: parent.type === "Property" && parent.shorthand && parent.value === node });
    }
  });

  /** @type {{ at: number, end: number, text: string }[]} */
  const edits = [];
  for (const [name, statement] of candidates) {
    // Declared more than once (shadowed somewhere) or written to: left alone.
    if (declared.get(name) !== 1 || written.has(name)) continue;
    const init = statement.declarations[0].init;
    // Parenthesised: `1000.toString()` would not parse; terser drops what is not needed.
    const value = typeof init.value === "number" ? "(" + init.raw + ")" : init.raw;
    edits.push({ at: statement.start, end: statement.end, text: "" });
    for (const use of uses) {
      if (use.node.name !== name) continue;
      edits.push({ at: use.node.start, end: use.node.end, text: use.shorthand ? name + ":" + value : value });
    }
  }
  return applyEdits(code, edits);
}
