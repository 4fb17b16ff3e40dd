// Shared by the test agents: the plain contract's input, from stdin or, with FROM_ENV=1, from INPUT_SPEC/INPUT_CONTEXT.
export async function readInput() {
  if (process.env.FROM_ENV === "1") {
    return { spec: JSON.parse(process.env.INPUT_SPEC), context: JSON.parse(process.env.INPUT_CONTEXT) };
  }
  let text = "";
  for await (const chunk of process.stdin) text += chunk;
  return JSON.parse(text);
}

export function emit(event) {
  process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), ...event })}\n`);
}
