/**
 * Turns generated tokens into streamable text, one piece per token. Two
 * things must not reach a client: half of a multi-byte UTF-8 character (byte
 * tokens split "é" into two tokens, each of which decodes to U+FFFD alone)
 * and the stop string that ends generation. So a token's piece may be "" while
 * its bytes or text are held back, and a later piece carries them.
 */
import type { Token } from "node-llama-cpp";

/** What one generated token contributes to the output. */
export interface TokenPiece {
  /** Text to stream now; "" while held back. */
  text: string;
  /** The stop string that this token completed; generation ends here, and `text` stops before it. */
  stop?: string;
}

/** Detokenizes `tokens`, given the tokens just before them for tokenizers that need context (leading spaces). */
export type Detokenize = (tokens: readonly Token[], before: readonly Token[]) => string;

/**
 * Splits a token stream into text pieces, withholding incomplete UTF-8 and
 * any tail that could be the start of one of `stops`.
 */
export interface TokenText {
  push(token: Token): TokenPiece;
  /** Everything still held back; call it when generation ends for another reason than a stop string. */
  flush(): string;
}

/** Longest UTF-8 character, in bytes, hence in tokens at worst. */
const MAX_CHAR_TOKENS = 4;
/** Tokens of context passed to the detokenizer. */
const CONTEXT_TOKENS = 8;

/** Creates the token-to-text splitter for one generation. */
export function createTokenText(detokenize: Detokenize, stops: readonly string[]): TokenText {
  const live = stops.filter((s) => s !== "");
  let pending: Token[] = []; // tokens whose bytes do not decode to whole characters yet
  let before: Token[] = []; // recent decoded tokens, context for the detokenizer
  let held = ""; // decoded text that may be the start of a stop string

  function decodePending(): string {
    const text = detokenize(pending, before);
    before = [...before, ...pending].slice(-CONTEXT_TOKENS);
    pending = [];
    return text;
  }

  return {
    push(token) {
      pending.push(token);
      const probe = detokenize(pending, before);
      // A trailing U+FFFD is an incomplete character unless enough tokens
      // have come to finish any character: then the bytes are just invalid.
      if (probe.endsWith("\uFFFD") && pending.length < MAX_CHAR_TOKENS) return { text: "" };
      before = [...before, ...pending].slice(-CONTEXT_TOKENS);
      pending = [];
      held += probe;
      const hit = firstStop(held, live);
      if (hit) {
        const text = held.slice(0, hit.index);
        held = "";
        return { text, stop: hit.stop };
      }
      const keep = stopPrefixLength(held, live);
      const text = held.slice(0, held.length - keep);
      held = held.slice(held.length - keep);
      return { text };
    },
    flush() {
      const text = held + (pending.length > 0 ? decodePending() : "");
      held = "";
      return text;
    },
  };
}

/** The earliest complete stop string in `text`. */
function firstStop(text: string, stops: readonly string[]): { index: number; stop: string } | undefined {
  let best: { index: number; stop: string } | undefined;
  for (const stop of stops) {
    const index = text.indexOf(stop);
    if (index >= 0 && (best === undefined || index < best.index)) best = { index, stop };
  }
  return best;
}

/** Length of the longest tail of `text` that is a proper prefix of a stop string. */
function stopPrefixLength(text: string, stops: readonly string[]): number {
  let keep = 0;
  for (const stop of stops) {
    for (let k = Math.min(stop.length - 1, text.length); k > keep; k--) {
      if (text.endsWith(stop.slice(0, k))) {
        keep = k;
        break;
      }
    }
  }
  return keep;
}
