// validate.mjs checks a Step Functions state machine definition against the
// Amazon States Language with asl-validator (JSON schemas plus the syntax of
// paths and ARNs). Usage: node validate.mjs definition.json
// Prints {"valid": bool, "errors": [...]} and exits 0; 2 on a bad argument.
import { readFileSync } from "node:fs";
import aslValidator from "asl-validator";

const path = process.argv[2];
if (!path) {
  console.error("usage: node validate.mjs definition.json");
  process.exit(2);
}
const definition = JSON.parse(readFileSync(path, "utf8"));
const { isValid, errorsText } = aslValidator(definition);
console.log(JSON.stringify({ valid: isValid, errors: isValid ? [] : errorsText("\n").split("\n") }));
