/// The live dashboard: one self-contained page (style and script inline, no external assets, no
/// build step). It listens to the coordinator's server-sent events (`v1/live`), one
/// `DashboardSnapshot` per change, and reconnects by itself, also to a restarted coordinator.
public enum DashboardPage {
    public static let html = """
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Tributary run</title>
    <link rel="icon" href="data:,">
    <style>
    \(PageStyle.css)
    </style>
    </head>
    <body>
    <a class="skip" href="#members-heading">Skip to the members</a>
    <header>
      <h1>Tributary run <span id="run-id">…</span></h1>
      <span>connection: <span id="connection" class="away" role="status" aria-live="polite">connecting…</span></span>
      <button id="pause" type="button" aria-pressed="false">Pause updates</button>
      <nav aria-label="sections">
        <a href="#members-heading">Members</a><a href="#ring-heading">Ring</a>
        <a href="#charts-heading">Charts</a><a href="#events-heading">Events</a>
      </nav>
    </header>
    <main>
      <dl class="facts">
        <div><dt>phase</dt><dd id="phase">…</dd></div>
        <div><dt>round</dt><dd id="round">…</dd></div>
        <div><dt>validation loss</dt><dd id="validation-loss">…</dd></div>
        <div><dt>workers active</dt><dd id="workers">…</dd></div>
        <div><dt>bytes sent (all)</dt><dd id="bytes-sent">…</dd></div>
        <div><dt>bytes received (all)</dt><dd id="bytes-received">…</dd></div>
        <div><dt>ring epoch</dt><dd id="epoch">…</dd></div>
      </dl>
      <h2 id="members-heading">Members</h2>
      <div class="scroll" tabindex="0" role="region" aria-labelledby="members-heading">
      <table id="members">
        <thead><tr><th scope="col">worker</th><th scope="col">state</th><th scope="col" class="num">speed alone (tok/s)</th>
        <th scope="col" class="num">tokens/s</th><th scope="col" class="num">computing</th><th scope="col" class="num">sent</th>
        <th scope="col" class="num">received</th><th scope="col" class="num">link</th><th scope="col" class="num">round</th>
        <th scope="col" class="num">loss</th><th scope="col" class="num">last heard</th></tr></thead>
        <tbody></tbody>
      </table>
      </div>
      <h2 id="ring-heading">Ring</h2>
      <p>Each worker sends to the next, the last to the first. <span id="state-source"></span></p>
      <ol class="ring" id="ring"></ol>
      <h2 id="charts-heading">Charts</h2>
      <div class="charts">
        <figure id="chart-loss" tabindex="0" aria-label="loss over time"></figure>
        <figure id="chart-throughput" tabindex="0" aria-label="throughput per worker over time"></figure>
        <figure id="chart-bytes" tabindex="0" aria-label="bytes sent per worker against the link"></figure>
        <figure id="chart-utilisation" tabindex="0" aria-label="share of time computing per worker"></figure>
      </div>
      <h2 id="events-heading">Events</h2>
      <div class="scroll" tabindex="0" role="region" aria-labelledby="events-heading">
      <table id="events">
        <thead><tr><th scope="col">time</th><th scope="col">event</th><th scope="col">worker</th>
        <th scope="col" class="num">round</th><th scope="col">what happened</th></tr></thead>
        <tbody></tbody>
      </table>
      </div>
    </main>
    <footer><small>Updates: <span id="updates" data-count="0">0</span>. Data: <a href="status">status</a>,
      <a href="metrics">metrics</a>.</small></footer>
    <script>
    "use strict";
    const $ = (id) => document.getElementById(id);
    let paused = false, latest = null, updates = 0;
    function bytes(n) {
      if (n == null) return "–";
      const units = ["B", "kB", "MB", "GB", "TB"]; let i = 0;
      while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
      return (i ? n.toFixed(n < 10 ? 2 : 1) : String(n)) + " " + units[i];
    }
    const num = (x, digits) => x == null ? "–"
      : x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
    const pct = (x) => x == null ? "–" : Math.round(100 * x) + "%";
    function cell(row, text, cls) {
      const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; row.appendChild(td); return td;
    }
    function fill(tbody, items, build) { tbody.replaceChildren(...items.map(build)); }
    function render(s) {
      $("run-id").textContent = s.runFingerprint;
      $("phase").textContent = s.phase;
      $("round").textContent = s.round == null ? "not started" : s.round + " / " + (s.rounds ?? "?");
      $("validation-loss").textContent = num(s.validationLoss, 4);
      $("workers").textContent = s.members.filter((m) => m.state === "active").length + " / " + s.expectedWorkers;
      $("bytes-sent").textContent = bytes(s.bytesSent);
      $("bytes-received").textContent = bytes(s.bytesReceived);
      $("epoch").textContent = s.epoch;
      fill($("members").tBodies[0], s.members, (m) => {
        const tr = document.createElement("tr"); tr.dataset.worker = m.name;
        const th = document.createElement("th"); th.scope = "row"; th.textContent = m.name; tr.appendChild(th);
        cell(tr, m.state, "state-" + m.state);
        cell(tr, num(m.speed, 0), "num"); cell(tr, num(m.tokensPerSecond, 0), "num"); cell(tr, pct(m.computeShare), "num");
        cell(tr, bytes(m.bytesSent), "num bytes-sent"); cell(tr, bytes(m.bytesReceived), "num bytes-received");
        cell(tr, m.linkBytesPerSecond == null ? "unshaped" : bytes(m.linkBytesPerSecond * 8).replace("B", "bit") + "/s", "num");
        cell(tr, m.round == null ? "–" : m.round + " / " + m.rounds, "num");
        cell(tr, num(m.loss, 4), "num loss");
        cell(tr, m.secondsSinceSeen == null ? "–" : num(m.secondsSinceSeen, 1) + " s ago", "num");
        return tr;
      });
      fill($("ring"), s.ring, (name) => { const li = document.createElement("li"); li.textContent = name; return li; });
      $("state-source").textContent = s.stateSource ? "Newcomers take the state of " + s.stateSource + "." : "";
      for (const name of ["loss", "throughput", "bytes", "utilisation"]) {
        // The SVG is drawn by the coordinator, its text escaped there.
        if (s.charts[name]) $("chart-" + name).innerHTML = s.charts[name];
      }
      fill($("events").tBodies[0], s.events, (e) => {
        const tr = document.createElement("tr"); tr.className = "event-" + e.kind;
        cell(tr, new Date(e.time * 1000).toLocaleTimeString()); cell(tr, e.kind); cell(tr, e.worker ?? "");
        cell(tr, e.round == null ? "" : String(e.round + 1), "num"); cell(tr, e.detail, "detail");
        return tr;
      });
    }
    function connection(text, live) { const c = $("connection"); c.textContent = text; c.className = live ? "live" : "away"; }
    $("pause").addEventListener("click", () => {
      paused = !paused;
      $("pause").textContent = paused ? "Resume updates" : "Pause updates";
      $("pause").setAttribute("aria-pressed", String(paused));
      if (!paused && latest) render(latest);
    });
    // EventSource reconnects by itself: after a coordinator restart the page picks up again.
    const source = new EventSource("v1/live");
    source.addEventListener("open", () => connection("live", true));
    source.addEventListener("error", () => connection("reconnecting…", false));
    source.addEventListener("snapshot", (event) => {
      latest = JSON.parse(event.data); updates++;
      $("updates").textContent = String(updates); $("updates").dataset.count = String(updates);
      // A finished run's coordinator goes away: the last snapshot stays, without reconnecting.
      if (latest.phase === "finished") { source.close(); connection("run finished", true); }
      if (!paused) render(latest);
    });
    </script>
    </body>
    </html>
    """
}
