/**
 * Paging through a list RPC's page tokens: usePageTokens keeps the token of
 * each page seen (so Back works), Pager draws Back and Next, and EmptyRow
 * says that nothing matched (or, when the scan stopped early, that Next
 * looks further).
 */
import { useState } from "preact/hooks";

export function usePageTokens() {
  const [tokens, setTokens] = useState<string[]>([""]);
  return {
    token: tokens.at(-1) ?? "",
    first: tokens.length === 1,
    back: () => setTokens(tokens.slice(0, -1)),
    next: (token: string) => setTokens([...tokens, token]),
  };
}

export function Pager({ pages, nextToken }: { pages: ReturnType<typeof usePageTokens>; nextToken: string | undefined }) {
  return (
    <nav class="pages">
      <button disabled={pages.first} onClick={pages.back}>
        Back
      </button>
      <button data-action="next" disabled={!nextToken} onClick={() => nextToken && pages.next(nextToken)}>
        Next
      </button>
    </nav>
  );
}

export function EmptyRow({ columns, what, more }: { columns: number; what: string; more: boolean }) {
  return (
    <tr>
      <td colSpan={columns} class="empty">
        No {what} matches{more ? " in this part; Next looks further" : ""}.
      </td>
    </tr>
  );
}
