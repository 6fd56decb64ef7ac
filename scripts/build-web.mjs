// Bundles the browser client (clients/web) into <out>/web. Filled in by the web-client work.
export async function buildWeb(root, out) {}
