/** Types of build-dashboard.mjs (for the tests that call it). */
export function buildDashboard(root: string, out: string): Promise<{ dir: string; bytes: number }>;
