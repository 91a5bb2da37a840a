import HTTPTypes
import Hummingbird

/// The dashboard's stylesheet and script, served from memory: no build step, nothing fetched from elsewhere.
enum DashboardAssets {
    /// Pages are never cached (they hold a person's figures), never framed, and run only this site's script and style.
    static let pageHeaders: HTTPFields = [
        .contentType: "text/html; charset=utf-8",
        .cacheControl: "no-store",
        HTTPField.Name("Content-Security-Policy")!: "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("X-Frame-Options")!: "DENY",
        HTTPField.Name("Referrer-Policy")!: "same-origin",
    ]

    static let css = #"""
    :root { --ink: #1b1f24; --muted: #59636e; --line: #d0d7de; --bg: #f6f8fa; --card: #fff; --accent: #0b5cad; --warn: #9a6700; --bad: #b42318; --ok: #1a7f37; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
    a { color: var(--accent); }
    a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, summary:focus-visible { outline: 3px solid #f0b400; outline-offset: 2px; }
    .skip { position: absolute; left: -999px; } .skip:focus { left: 8px; top: 8px; background: #fff; padding: 8px; z-index: 10; }
    header.top { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; padding: 10px 16px; background: #0d1117; color: #fff; }
    header.top a { color: #fff; text-decoration: none; } header.top .brand { font-weight: 700; margin-right: auto; }
    header.top nav ul { display: flex; flex-wrap: wrap; gap: 4px 14px; list-style: none; margin: 0; padding: 0; }
    header.top nav a[aria-current="page"] { text-decoration: underline; text-underline-offset: 4px; }
    header.top .who { display: flex; gap: 8px; align-items: center; margin: 0; }
    header.top .who button { background: transparent; color: #fff; border: 1px solid #8b949e; }
    .timerbar { display: flex; flex-wrap: wrap; gap: 8px; padding: 8px 16px; background: #fff8c5; border-bottom: 1px solid #d4a72c; }
    .timer-chip { padding: 2px 10px; border-radius: 999px; background: #fff; border: 1px solid #d4a72c; text-decoration: none; color: var(--ink); }
    main { max-width: 1100px; margin: 0 auto; padding: 16px; }
    h1 { font-size: 1.6rem; margin: 8px 0 16px; } h2 { font-size: 1.2rem; margin: 24px 0 8px; }
    .narrow { max-width: 420px; margin: 24px auto; }
    .stack { display: grid; gap: 6px; } .stack button { margin-top: 8px; justify-self: start; }
    .inline { display: flex; flex-wrap: wrap; gap: 8px; align-items: end; margin: 8px 0; }
    label { font-weight: 600; } fieldset { border: 1px solid var(--line); border-radius: 6px; } fieldset label { font-weight: 400; margin-right: 12px; }
    input, select, textarea { font: inherit; padding: 8px; border: 1px solid #8c959f; border-radius: 6px; min-width: 0; max-width: 100%; background: #fff; }
    button, .button { font: inherit; padding: 8px 14px; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; display: inline-block; }
    button.reject, button.discard, button.pause { background: #fff; color: var(--bad); border-color: var(--bad); }
    .notice { background: #dafbe1; border: 1px solid var(--ok); padding: 8px 12px; border-radius: 6px; }
    .error { background: #ffebe9; border: 1px solid var(--bad); padding: 8px 12px; border-radius: 6px; }
    .cards { list-style: none; padding: 0; display: grid; gap: 16px; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); }
    .card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
    .card h2 { margin: 0 0 4px; font-size: 1.15rem; } .period { color: var(--muted); margin: 0 0 8px; }
    .figures { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 6px 12px; margin: 0 0 10px; }
    .figures div { display: flex; flex-direction: column; } .figures dt { color: var(--muted); font-size: .85rem; } .figures dd { margin: 0; font-weight: 700; font-variant-numeric: tabular-nums; }
    .wide .figures { grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); }
    meter { width: 100%; height: 14px; }
    svg.burn { width: 100%; height: 140px; display: block; margin-top: 8px; } .wide svg.burn { height: 220px; }
    svg.burn .axis { stroke: #8c959f; } svg.burn .quota { stroke: var(--bad); stroke-dasharray: 4 3; } svg.burn .used { fill: none; stroke: var(--accent); stroke-width: 2.5; }
    svg.burn .forecast { stroke: var(--warn); stroke-dasharray: 6 4; stroke-width: 2; } svg.burn .today { stroke: #8c959f; stroke-dasharray: 2 3; } svg.burn .label { font-size: 11px; fill: var(--muted); }
    .scroll { overflow-x: auto; } table { border-collapse: collapse; width: 100%; background: #fff; }
    th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; } .num { text-align: right; font-variant-numeric: tabular-nums; }
    .timers, .rows { list-style: none; padding: 0; display: grid; gap: 10px; }
    .timer, .row { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; } .timer.running { border-color: var(--ok); }
    .timer p, .row p { margin: 0 0 6px; } .elapsed { font-variant-numeric: tabular-nums; font-weight: 700; } .state { color: var(--muted); }
    .actions { display: flex; gap: 8px; } .actions form { margin: 0; } details.stop summary { cursor: pointer; margin: 6px 0; color: var(--bad); }
    .note { color: var(--muted); white-space: pre-wrap; } .crumbs { margin-bottom: 8px; color: var(--muted); }
    .paging { display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; margin-top: 16px; } .paging p { margin: 0; color: var(--muted); }
    @media (max-width: 520px) { main { padding: 10px; } header.top { padding: 8px 10px; } h1 { font-size: 1.35rem; } .inline > * { flex: 1 1 100%; } }
    """#

    /// Makes the elapsed time of running timers tick; the figures come from the server, so a reload shows the truth.
    static let js = #"""
    (function () {
      var loaded = Date.now();
      function face(s) { var h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), r = s % 60; return h + ":" + (m < 10 ? "0" : "") + m + ":" + (r < 10 ? "0" : "") + r; }
      function tick() {
        var spans = document.querySelectorAll(".elapsed[data-running='true']");
        for (var i = 0; i < spans.length; i++) {
          var base = parseInt(spans[i].getAttribute("data-elapsed"), 10) || 0;
          spans[i].textContent = face(base + Math.floor((Date.now() - loaded) / 1000));
        }
      }
      setInterval(tick, 1000);
    })();
    """#
}
