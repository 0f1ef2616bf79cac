/** Lower-case words of a text, letters and digits only. */
export function wordsOf(text: unknown): string[] {
  return typeof text === 'string' ? text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [] : [];
}

/**
 * Whether the text mentions any keyword: a word that starts with it ("tip" matches
 * "tips" and "tipping"), so a component is offered only for messages about it.
 */
export function mentionsAny(text: unknown, keywords: readonly string[]): boolean {
  const words = wordsOf(text);
  return keywords.some((keyword) => words.some((word) => word.startsWith(keyword)));
}
