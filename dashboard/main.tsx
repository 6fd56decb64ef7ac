/**
 * The dashboard's shell: a header with the pages and the API key field,
 * and the page the URL's hash names (#/, #/jobs?state=, #/steps?state=&route=,
 * #/jobs/<id>), so every view has a link that survives a reload.
 * Built by scripts/build-dashboard.mjs; served at / by stepq serve.
 */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import "uplot/dist/uPlot.min.css";
import "./app.css";
import { apiKey, setApiKey } from "./client.js";
import { Job } from "./pages/job.js";
import { Jobs } from "./pages/jobs.js";
import { Overview } from "./pages/overview.js";
import { Steps } from "./pages/steps.js";

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash;
}

function Page({ hash }: { hash: string }) {
  const [path = "", q = ""] = hash.replace(/^#/, "").split("?");
  const job = /^\/jobs\/([0-9a-z]+)$/.exec(path);
  if (job) return <Job key={job[1]} jobId={job[1] as string} />;
  if (path === "/steps") return <Steps key={q} query={new URLSearchParams(q)} />;
  if (path === "/jobs") return <Jobs key={q} query={new URLSearchParams(q)} />;
  return <Overview />;
}

function App() {
  const hash = useHash();
  const [key, setKey] = useState(apiKey());
  return (
    <>
      <header>
        <h1>stepq</h1>
        <nav>
          <a href="#/">Overview</a>
          <a href="#/jobs">Jobs</a>
          <a href="#/steps">Steps</a>
          <a href="#/steps?state=FAILED">Dead letters</a>
        </nav>
        <form
          class="key"
          onSubmit={(e) => {
            e.preventDefault();
            setApiKey(key);
            location.reload();
          }}
        >
          <input type="password" name="api-key" placeholder="API key (servers with --auth required)" value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} />
          <button type="submit">Use</button>
        </form>
      </header>
      <main>
        <Page hash={hash} />
      </main>
    </>
  );
}

render(<App />, document.getElementById("app") as HTMLElement);
