/**
 * Connect's JSON options for the requests of one RPC, with a decoder that
 * names the field a bad request got wrong.
 *
 * Connect turns a JSON request's bytes into text with `jsonOptions.
 * textDecoder`, then parses the text with protobuf-es, and answers a parse
 * error itself, before any interceptor runs (for unary calls). The decoder is
 * therefore the one place that sees every JSON request (unary, streaming,
 * GET, any protocol) before Connect parses it: it parses the text first, and
 * when protobuf-es refuses it, throws INVALID_ARGUMENT with the field's path
 * and the values it takes (server/json-field-error.ts). Connect passes a
 * ConnectError from the decoder through unchanged.
 *
 * The price is a second parse of every valid JSON request. JSON is what curl
 * and browsers send, not the Node client (binary), so the hot paths do not
 * pay it. Connect's handler options do not declare `textDecoder` (its JSON
 * serialization does), hence the widened type.
 */
import { type DescMessage, fromJsonString, type JsonReadOptions } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { explainJsonError } from "./json-field-error.js";

/** JSON read options plus the decoder Connect's JSON serialization takes. */
export type JsonRequestOptions = Partial<JsonReadOptions> & { textDecoder: { decode(input?: Uint8Array): string } };

/** The JSON options for requests of type `desc`, on top of `base`. */
export function jsonRequestOptions(desc: DescMessage, base: Partial<JsonReadOptions>): JsonRequestOptions {
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  return {
    ...base,
    textDecoder: {
      decode(input?: Uint8Array): string {
        let text: string;
        try {
          text = utf8.decode(input);
        } catch (e) {
          throw new ConnectError("the request body is not valid UTF-8; send JSON encoded as UTF-8", Code.InvalidArgument, undefined, undefined, e);
        }
        try {
          fromJsonString(desc, text, base);
        } catch (e) {
          throw new ConnectError(explainJsonError(desc, text, e), Code.InvalidArgument, undefined, undefined, e);
        }
        return text;
      },
    },
  };
}
