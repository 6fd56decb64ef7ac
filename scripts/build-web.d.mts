/** Types of build-web.mjs (for the tests that call it). */
export function buildWeb(root: string, out: string, entry?: string): Promise<{ outfile: string; bytes: number }>;
