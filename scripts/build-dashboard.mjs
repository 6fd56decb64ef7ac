// Bundles the dashboard (dashboard/) into <out>/dashboard. Filled in by the dashboard work.
export async function buildDashboard(root, out) {}
