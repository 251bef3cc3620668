// Problems (RFC 9457) as plain values: the pure core returns them, the adapter sends them with sendProblem.
// Expected failures are values (conventions: "Expected failures are values, misuse throws").

export interface Problem {
  status: number;
  /** One sentence that says what to fix. Never contains a password or a message body. */
  detail: string;
  headers?: Record<string, string>;
}

export type Result<T> = { ok: true; value: T } | { ok: false; problem: Problem };

export function problem(status: number, detail: string, headers?: Record<string, string>): { ok: false; problem: Problem } {
  return { ok: false, problem: headers ? { status, detail, headers } : { status, detail } };
}

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

/** Quote a user-supplied value for a detail: JSON string syntax, so control characters stay visible; long values are cut. */
export function quote(value: string, max = 80): string {
  const cut = [...value].length > max ? `${[...value].slice(0, max).join('')}…` : value;
  return JSON.stringify(cut);
}
