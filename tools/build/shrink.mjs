// Two rewrites of the minified Espruino image that terser has no option for. On Espruino
// an image's bytes are RAM when it is loaded from the console, and flash either way.
// - `const` becomes `let`: two bytes each. Espruino scopes them alike (jsparse.c,
//   jspeStatementVar) and only marks a const's variable read-only, which a program that
//   compiled never relies on.
// - A function that says `this` often says it through a one-letter local instead
//   (`let t=this;`): three bytes a use, eleven for the local. A function body's top-level
//   `let` lives in the function's own scope on Espruino (no block scope object), so the
//   local costs one variable while the call runs.
// Both are checked by the image tests: every test runs the rewritten image.

import { parse } from "acorn";

/** A function that uses `this` fewer times than this keeps it: the local would not pay. */
const MIN_THIS_USES = 4;
const LETTERS = "tesinorlaucfhdpmgbvywkxjqzTESINORLAUCFHDPMGBVYWKXJQZ_$";

/** @typedef {{ type: string, start: number, end: number, [key: string]: any }} Node */

/** @param {Node} node @param {(child: Node) => boolean | void} visit: false skips the child's children */
function children(node, visit) {
  for (const key of Object.keys(node)) {
    const value = node[key];
    if (Array.isArray(value)) {
      for (const item of value) if (item && typeof item.type === "string") visit(item);
    } else if (value && typeof value.type === "string") visit(value);
  }
}

/** @param {Node} node */
function isOwnThisFunction(node) {
  return node.type === "FunctionExpression" || node.type === "FunctionDeclaration";
}

/**
 * The `this` of `fn` (arrows share it; other functions have their own) and every
 * identifier written anywhere inside it, nested functions included.
 * @param {Node} fn
 */
function thisUses(fn) {
  /** @type {Node[]} */
  const uses = [];
  /** @type {Set<string>} */
  const names = new Set();
  /** @param {Node} node @param {boolean} own */
  const walk = (node, own) => {
    if (node.type === "ThisExpression" && own) uses.push(node);
    if (node.type === "Identifier") names.add(node.name);
    children(node, (child) => walk(child, own && !isOwnThisFunction(child)));
  };
  for (const param of fn.params) walk(param, false);
  walk(fn.body, true);
  return { uses, names };
}

/**
 * @param {string} code a script (the minified image)
 * @returns {string} the same program, shorter
 */
export function shrinkImage(code) {
  /** @type {{ at: number, end: number, text: string }[]} */
  const edits = [];
  /** @type {Node[]} */
  const superClassMethods = [];
  /** @param {Node} node */
  const visit = (node) => {
    if (node.type === "VariableDeclaration" && node.kind === "const") edits.push({ at: node.start, end: node.start + "const".length, text: "let" });
    if (node.type === "ClassDeclaration" || node.type === "ClassExpression") {
      // A derived constructor cannot touch `this` before super(): leave derived classes alone.
      if (node.superClass) for (const member of node.body.body) superClassMethods.push(member.value);
    }
    if (isOwnThisFunction(node) && !node.generator && node.body.type === "BlockStatement" && !superClassMethods.includes(node)) {
      const { uses, names } = thisUses(node);
      const alias = uses.length >= MIN_THIS_USES ? [...LETTERS].find((letter) => !names.has(letter)) : undefined;
      if (alias !== undefined) {
        edits.push({ at: node.body.start + 1, end: node.body.start + 1, text: "let " + alias + "=this;" });
        for (const use of uses) edits.push({ at: use.start, end: use.end, text: alias });
      }
    }
    children(node, visit);
  };
  visit(/** @type {Node} */ (/** @type {unknown} */ (parse(code, { ecmaVersion: 2020, sourceType: "script" }))));
  edits.sort((a, b) => a.at - b.at);
  let result = "";
  let from = 0;
  for (const edit of edits) {
    result += code.slice(from, edit.at) + edit.text;
    from = edit.end;
  }
  return result + code.slice(from);
}
