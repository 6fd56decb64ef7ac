/**
 * Keeps an HTTP/1.1 connection usable when its request's body is not read
 * to the end: a request answered early (refused for its size or a bad
 * header), or one whose handler stopped reading (connect-node leaves its
 * for-await over the body when the first envelope is too large, which
 * destroys the request). Node's parser then stays paused in the middle of
 * that body with the connection open: a keep-alive client's next request
 * on it hangs, or is reset when the connection is finally closed (the fuzz
 * run found it: a 142 KB body after an envelope header of 4 GiB).
 *
 * Here the rest of the body is dropped by the parser as it arrives, the
 * connection stays open while the client is still sending (so it reads the
 * answer instead of failing its write), and a body that has not ended
 * LINGER_MS after the answer closes the connection. HTTP/2 needs none of
 * this: each request is its own stream.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** How long a connection may go on sending a body nobody reads after its answer before it is closed. */
const LINGER_MS = 5000;

/**
 * Node's own fields used here: `_dumped` makes the parser drop the body (what
 * IncomingMessage._dump sets); `_paused` is the server's back-pressure on the socket.
 */
type ParsedMessage = IncomingMessage & { _dumped?: boolean };
type ServerSocket = Socket & { _paused?: boolean };

export function drainUnreadBody(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket as ServerSocket; // taken now: Node detaches it from the request once the answer is sent
  const message = req as ParsedMessage;
  let dropping = false;

  /** From now on the parser drops the body (unlike req.resume(), also after Node detached the socket). */
  function dropRest() {
    if (dropping || message.complete || socket.destroyed) return;
    dropping = true;
    message._dumped = true;
    message.removeAllListeners("data");
    message.removeAllListeners("readable");
    if (socket.readable && !socket._paused) socket.resume();
  }

  const destroy = message.destroy;
  message.destroy = function (this: IncomingMessage, error?: Error) {
    // Node's async iterator stops a stream with an AbortError: that is a handler that stopped reading.
    const stopped = error === undefined || error === null || error.name === "AbortError";
    if (stopped && !message.complete && !socket.destroyed) {
      dropRest();
      return this;
    }
    // Once dropping, a read attempted by Node's stream internals fails (the socket is detached): not a reason to close.
    if (dropping && !socket.destroyed) return this;
    return destroy.call(this, error);
  };

  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse["writeHead"]>) {
    if (!message.complete && !socket.destroyed) {
      // An answer that closes the connection (the client asked, or the
      // server says Connection: close) would have Node close it right
      // after the answer, while the client is still sending: its write
      // fails and it never reads the answer. The close waits for the body.
      const destroySoon = socket.destroySoon;
      let closeWhenIn = false;
      socket.destroySoon = function (this: Socket) {
        if (message.complete) destroySoon.call(this);
        else closeWhenIn = true;
      };
      const linger = setTimeout(() => {
        if (!message.complete) socket.destroy();
      }, LINGER_MS);
      linger.unref();
      const onClose = () => clearTimeout(linger);
      socket.once("close", onClose);
      // The parser ends a dropped body too ('end' once it is complete). The
      // socket outlives the request on a keep-alive connection: its close
      // listener goes too, or every such request would leave one behind.
      message.once("end", () => {
        clearTimeout(linger);
        socket.removeListener("close", onClose);
        socket.destroySoon = destroySoon;
        if (closeWhenIn) socket.destroySoon();
      });
      // Once the answer is sent, nobody else reads the request.
      this.once("finish", dropRest);
      this.once("close", dropRest);
    }
    return writeHead.apply(this, args);
  } as ServerResponse["writeHead"];
}
