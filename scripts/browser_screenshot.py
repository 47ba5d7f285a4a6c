#!/usr/bin/env python3
"""Neo4j Browser end to end in headless Chromium: the guide and style sheet applied on connect, a guide query
run, styled nodes on screen, a screenshot.

    .venv/bin/python scripts/browser_screenshot.py --out docs/browser.png            # throwaway server + data
    .venv/bin/python scripts/browser_screenshot.py --http-port 7474 --bolt-port 7687 \\
        --password-file ~/.kgplatform/neo4j/password --out /tmp/browser.png          # a running local server

Without ``--http-port`` it starts a throwaway local Neo4j (temporary KGP_HOME, free ports, no auth), ingests the
tiny MovieLens fixture with its DBpedia KG and trains POP (so there are RECOMMENDED edges), then stops and deletes
it. With ``--http-port`` it only reads from the server you name (the guide's queries are read queries and
``:param`` is client-side), nothing is written.

Steps, each checked: open ``/browser/`` and connect (no auth, or the connect form filled with user neo4j and the
password); wait for the frame that ``browser.post_connect_cmd`` opens (``:play …/kgp/browser/guide.html``) and for
the platform's GRASS in the Browser's local storage (``:style …/kgp/browser/kgplatform.grass``); click the guide's
own runnable ``:param`` boxes (first user with recommendations, that user's top item, limit) and the knowledge-graph
explanation box, run each; wait for the graph view and read the fill colour of each drawn node; save a screenshot.
Prints one JSON summary; exits 0 when every check passed, 1 when one failed, 3 when Chromium is missing.

Talks to Chromium over the DevTools protocol with the ``websockets`` package (already in the venv).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: the explanation query the script runs from the guide (first line of cypher/explain/kg_paths.cypher's body)
KG_QUERY_START = "MATCH (u:User {id: $user}), (i:Item {id: $item})\nMATCH p = (u)-[:INTERACTED]->(liked:Item)-[f1:FACT]"
PARAM_BOXES = (":param user => COLLECT", ":param item => COLLECT", ":param limit")
FRAMES = "document.querySelectorAll('[data-testid=frame]').length"


class CheckFailed(Exception):
    pass


def find_chromium(explicit: str | None = None) -> str | None:
    if explicit:
        return shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
    env = os.environ.get("CHROMIUM")
    if env:
        return shutil.which(env) or (env if Path(env).is_file() else None)
    for name in CHROMIUMS:
        path = shutil.which(name)
        if path:
            return path
    return None


def expected_colours() -> dict[str, str]:
    """label → fill colour, from the repository's style sheet."""
    sys.path.insert(0, str(REPO))
    from kgplatform.db.browser import parse_grass, style_text

    rules = parse_grass(style_text())
    return {sel.split(".", 1)[1]: r["color"].upper() for sel, r in rules.items()
            if sel.startswith("node.") and "color" in r}


# -- a throwaway server with data -----------------------------------------------------------------------------
class Throwaway:
    def __init__(self, data: Path, dbpedia: Path) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="kgp-browser-"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "KGP_"))}
        self.env.update(KGP_HOME=str(self.home), KGP_HEAP="1g", KGP_PAGECACHE="256m")
        self.data, self.dbpedia = data, dbpedia

    def kgp(self, *args: str, timeout: int = 900) -> str:
        r = subprocess.run([sys.executable, "-m", "kgplatform.cli.main", *args], env=self.env, cwd=REPO,
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise CheckFailed(f"kgp {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()[-800:]}")
        return r.stdout

    def start(self) -> tuple[int, int]:
        doc = json.loads(self.kgp("db", "start", "--no-auth", "--bolt-port", "0", "--http-port", "0", "--json"))
        bolt = int(doc["uri"].rsplit(":", 1)[1])
        http = int(doc["browser"].split(":")[2].split("/")[0])
        self.env.update(NEO4J_URI=doc["uri"])  # every later command talks to this server only
        self.kgp("ingest", "movielens-100k", "--path", str(self.data), "--dbpedia", str(self.dbpedia),
                 "--name", "ml-tiny")
        self.kgp("train", "pop", "-d", "ml-tiny", "--seeds", "2024")
        return bolt, http

    def stop(self) -> None:
        env = {k: v for k, v in self.env.items() if k != "NEO4J_URI"}
        subprocess.run([sys.executable, "-m", "kgplatform.cli.main", "db", "stop"], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=120)
        shutil.rmtree(self.home, ignore_errors=True)


# -- Chromium over the DevTools protocol -------------------------------------------------------------------
class Page:
    def __init__(self, ws) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params):
        self.next_id += 1
        mine = self.next_id
        await self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            msg = json.loads(await self.ws.recv())
            if msg.get("id") == mine:
                if "error" in msg:
                    raise CheckFailed(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def js(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise CheckFailed(f"script error: {result['exceptionDetails'].get('text')}: {expression[:120]}")
        return result.get("result", {}).get("value")

    async def until(self, expression: str, what: str, timeout_s: float = 60):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.5)
        raise CheckFailed(f"timed out after {timeout_s:.0f} s waiting for {what}")


async def connect_form(page: Page, password: str) -> None:
    """Fill Browser's connect form (React inputs need the native setter and an input event)."""
    await page.until("!!document.querySelector('input[data-testid=password]')", "the connect form", 60)
    fill = """(sel, value) => { const el = document.querySelector(sel); if (!el) return false;
        const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
        set.call(el, value); el.dispatchEvent(new Event('input', {bubbles: true})); return true; }"""
    # the Bolt address comes from the ?dbms= URL parameter
    for sel, value in (("input[data-testid=username]", "neo4j"), ("input[data-testid=password]", password)):
        await page.js(f"({fill})({json.dumps(sel)}, {json.dumps(value)})")
    await page.js("document.querySelector('[data-testid=connect]').click()")


async def run_guide_box(page: Page, prefix: str, max_slides: int = 12) -> str:
    """Find the guide's runnable box starting with ``prefix`` (paging through the slides), click it (Browser puts
    it into the editor), run it, and return the text of the frame it produced."""
    find = f"""(() => {{ const el = [...document.querySelectorAll('[data-testid=carousel] pre.runnable')]
        .find(e => e.textContent.trim().startsWith({json.dumps(prefix)})); if (!el) return false; el.click();
        return true; }})()"""
    for _ in range(max_slides):
        if await page.js(find):
            break
        if not await page.js("""(() => { const b = document.querySelector('[data-testid=nextSlide]');
                                 if (!b || b.disabled) return false; b.click(); return true; })()"""):
            raise CheckFailed(f"the guide has no runnable box starting with {prefix!r}")
        await asyncio.sleep(0.4)
    else:
        raise CheckFailed(f"the guide has no runnable box starting with {prefix!r}")
    await asyncio.sleep(0.5)
    before = await page.js(FRAMES)
    await page.js("document.querySelector('[data-testid=editor-Run]').click()")
    await page.until(f"{FRAMES} > {before}", f"the frame of {prefix!r}", 60)
    await asyncio.sleep(1.0)
    text = await page.js("document.querySelector('[data-testid=frame]').innerText") or ""
    if "ERROR" in text[:600]:
        raise CheckFailed(f"{prefix!r} failed in the Browser: {text[:400]!r}")
    return text


async def close_frames_except_guide(page: Page) -> None:
    await page.js("""[...document.querySelectorAll('[data-testid=frame]')].forEach(f => {
        const cmd = f.querySelector('[data-testid=frameCommand]');
        if (!(cmd && cmd.textContent.includes(':play'))) { const b = f.querySelector('button[title=Close]'); if (b) b.click(); }
    })""")
    await asyncio.sleep(0.5)


async def drive(chromium: str, http_port: int, bolt_port: int, password: str | None, out: Path,
                width: int, height: int, timeout_s: float) -> dict:
    import websockets

    profile = tempfile.mkdtemp(prefix="kgp-chromium-")
    proc = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1", f"--user-data-dir={profile}",
         f"--window-size={width},{height}", "--hide-scrollbars", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # Debian's chromium is a wrapper script: stop the whole group at the end
    )
    summary: dict = {"chromium": chromium}
    try:
        ws_url = None
        deadline = time.monotonic() + 60
        assert proc.stderr is not None
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                ws_url = m.group(1)
                break
        if ws_url is None:
            raise CheckFailed("Chromium did not open its DevTools port")
        devtools = ws_url.split("/devtools/")[0].replace("ws://", "http://")
        with urllib.request.urlopen(f"{devtools}/json", timeout=10) as r:
            target = next(t for t in json.load(r) if t["type"] == "page")
        async with websockets.connect(target["webSocketDebuggerUrl"], max_size=64 * 2**20) as ws:
            page = Page(ws)
            await page.call("Page.enable")
            await page.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                            mobile=False)
            bolt_uri = f"bolt://127.0.0.1:{bolt_port}"
            url = f"http://127.0.0.1:{http_port}/browser/?dbms={bolt_uri}"
            url += "&preselectAuthMethod=NO_AUTH" if password is None else "&preselectAuthMethod=NATIVE"
            await page.call("Page.navigate", url=url)
            if password is not None:
                await connect_form(page, password)
            # post_connect_cmd: the guide opens in the stream ...
            await page.until("!!document.querySelector('[data-testid=carousel]')", "the guide (post_connect_cmd)",
                             timeout_s)
            summary["guide_title"] = await page.js(
                "document.querySelector('[data-testid=carousel] h3').textContent.trim()")
            # ... and the style sheet is the Browser's current GRASS
            want = expected_colours()
            grass = await page.until(
                f"""(() => {{ const g = localStorage.getItem('neo4j.grass'); let o = null;
                    try {{ o = JSON.parse(g); }} catch (e) {{ return false; }}
                    return o && o['node.User'] && (o['node.User'].color || '').toUpperCase() === {json.dumps(want['User'])} ? g : false; }})()""",
                "the platform's style sheet in the Browser (post_connect_cmd)", 30)
            stored = json.loads(grass)
            summary["style_applied"] = all(
                stored.get(f"node.{label}", {}).get("color", "").upper() == colour for label, colour in want.items())
            if not summary["style_applied"]:
                raise CheckFailed(f"the Browser's style is not the platform's: {grass[:300]}")
            params = {}
            for prefix in PARAM_BOXES:
                text = await run_guide_box(page, prefix)
                m = re.search(r'"(\w+)":\s*("?[^"\n]*"?)', text)
                if m:
                    params[m.group(1)] = json.loads(m.group(2))
            summary["params"] = params
            if not params.get("user") or not params.get("item"):
                raise CheckFailed(f"the guide's :param boxes set no user/item: {params}")
            await close_frames_except_guide(page)
            await run_guide_box(page, KG_QUERY_START)
            await page.until("document.querySelectorAll('[data-testid=frame] svg g.node').length > 0",
                             "the graph view", 60)
            await asyncio.sleep(4)  # the force layout settles
            nodes = await page.js("""[...document.querySelector('[data-testid=frame]').querySelectorAll('svg g.node')]
                .map(g => { const c = g.querySelector('circle.b-outline') || g.querySelector('circle');
                            const t = [...g.querySelectorAll('text')].map(x => x.textContent).join(' ');
                            return {fill: c ? (c.getAttribute('fill') || '') : '', caption: t}; })""")
            by_colour = {v: k for k, v in want.items()}
            seen: dict[str, int] = {}
            for n in nodes:
                label = by_colour.get(n["fill"].upper(), f"unstyled {n['fill']}")
                seen[label] = seen.get(label, 0) + 1
            summary["nodes"] = seen
            summary["captions"] = sorted({n["caption"] for n in nodes if n["caption"]})[:12]
            if not {"User", "Item", "Entity"} <= set(seen) or any(k.startswith("unstyled") for k in seen):
                raise CheckFailed(f"the graph view does not show the platform's colours: {seen}")
            shot = await page.call("Page.captureScreenshot", format="png")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(base64.b64decode(shot["data"]))
            summary["screenshot"] = str(out)
    finally:
        _stop_group(proc)
        shutil.rmtree(profile, ignore_errors=True)
    return summary


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to Chromium's process group, SIGKILL after 15 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            proc.poll()
            try:
                os.killpg(proc.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "browser.png", help="Screenshot path.")
    ap.add_argument("--http-port", type=int, help="A running local server's HTTP port (default: a throwaway).")
    ap.add_argument("--bolt-port", type=int, default=7687, help="Its Bolt port.")
    ap.add_argument("--password-file", type=Path, help="Password of user neo4j (when auth is on).")
    ap.add_argument("--chromium", help="Chromium binary (default: chromium on PATH, or $CHROMIUM).")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "movielens-100k-tiny")
    ap.add_argument("--dbpedia", type=Path, default=REPO.parent / "shared" / "data" / "movielens-100k" / "dbpedia")
    ap.add_argument("--size", default="1600x1000", help="Window size WxH.")
    ap.add_argument("--timeout", type=float, default=120, help="Seconds to wait for the Browser to connect.")
    args = ap.parse_args(argv)

    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("Error: Chromium not found (apt-get install chromium, or pass --chromium / set CHROMIUM)",
              file=sys.stderr)
        return 3
    try:
        width, height = (int(x) for x in args.size.lower().split("x"))
    except ValueError:
        print(f"Error: --size wants WxH, got {args.size!r}", file=sys.stderr)
        return 2
    password = None
    if args.password_file:
        try:
            password = args.password_file.expanduser().read_text().strip()
        except OSError as e:
            print(f"Error: cannot read {args.password_file}: {e.strerror}", file=sys.stderr)
            return 2
    throwaway = None
    try:
        if args.http_port is None:
            throwaway = Throwaway(args.data, args.dbpedia)
            bolt_port, http_port = throwaway.start()
        else:
            bolt_port, http_port = args.bolt_port, args.http_port
        summary = asyncio.run(drive(chromium, http_port, bolt_port, password, args.out, width, height, args.timeout))
    except CheckFailed as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    finally:
        if throwaway is not None:
            with contextlib.suppress(Exception):
                throwaway.stop()
    summary["ok"] = True
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
