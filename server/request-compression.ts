/**
 * The request compressions the server accepts (gzip, br): connect-node's
 * own, with one change. A body that claims a compression it does not have
 * (not gzip at all, or cut short) is the client's mistake, but connect-node
 * answers some of these INTERNAL ("decompression failed" for a truncated
 * gzip stream) and none says what was wrong. Here every decompression
 * failure is INVALID_ARGUMENT naming the compression and zlib's reason; a
 * body over the size limit once decompressed stays RESOURCE_EXHAUSTED.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { Compression } from "@connectrpc/connect/protocol";

function explained(c: Compression): Compression {
  return {
    name: c.name,
    compress: (bytes) => c.compress(bytes),
    async decompress(bytes, readMaxBytes) {
      try {
        return await c.decompress(bytes, readMaxBytes);
      } catch (e) {
        if (e instanceof ConnectError && e.code === Code.ResourceExhausted) throw e;
        const reason = e instanceof ConnectError && e.cause instanceof Error ? e.cause.message : String((e as Error)?.message ?? e);
        throw new ConnectError(
          `the request is marked ${c.name}-compressed but is not valid ${c.name} data (${reason}); ` +
            `compress it with ${c.name}, or send it uncompressed without the encoding header`,
          Code.InvalidArgument,
          undefined,
          undefined,
          e,
        );
      }
    },
  };
}

/** gzip and br, in the order the server prefers them for responses. */
export const requestCompressions: Compression[] = [explained(compressionGzip), explained(compressionBrotli)];
