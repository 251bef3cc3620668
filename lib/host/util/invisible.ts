// Invisible and direction-changing characters in text that quotes user input (errors, problem details, logs):
// shown as \uXXXX escapes, so a U+202E cannot make a line read backwards and a U+200B cannot hide in a name.

// Controls, format characters (bidi overrides and isolates U+202A–202E, U+2066–2069, zero-width U+200B–200F…),
// default-ignorables, private-use, unassigned, separators other than U+0020 (the Zs list is spelled out because
// character-class subtraction needs the `v` flag).
const INVISIBLE =
  /[\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Noncharacter_Code_Point}\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]/gu;

/** Every invisible or format character of `text` as `\uXXXX` (two escapes for one beyond the BMP); the rest unchanged. */
export function escapeInvisible(text: string): string {
  return text.replace(INVISIBLE, (char) => {
    let escaped = '';
    for (let i = 0; i < char.length; i++) escaped += `\\u${char.charCodeAt(i).toString(16).padStart(4, '0')}`;
    return escaped;
  });
}
