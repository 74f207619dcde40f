/// What the dashboard and the report pages share: their style sheet (inline, no external assets,
/// so the pages work offline) and HTML escaping.
public enum PageStyle {
    /// Readable from a phone-sized window up: one column under 900 px, two above.
    public static let css = """
    :root { color-scheme: light; --ink: #1b1f24; --muted: #57606a; --line: #d0d7de; --accent: #0b5fad; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--ink); background: #f6f8fa; }
    header, main, footer { max-width: 1280px; margin: 0 auto; padding: 0.6rem 1rem; }
    header { display: flex; flex-wrap: wrap; gap: 0.4rem 1.4rem; align-items: baseline; }
    h1 { font-size: 1.25rem; margin: 0.2rem 0; }
    h2 { font-size: 1.05rem; margin: 1.2rem 0 0.4rem; }
    nav a, a { color: var(--accent); }
    nav { display: flex; flex-wrap: wrap; gap: 0.8rem; }
    a:focus-visible, button:focus-visible, figure:focus-visible, [tabindex]:focus-visible {
      outline: 3px solid #f0a500; outline-offset: 2px; }
    .skip { position: absolute; left: -999px; } .skip:focus { left: 0.5rem; top: 0.5rem; background: white; padding: 0.3rem; }
    .facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 0.5rem; margin: 0; }
    .facts div { background: white; border: 1px solid var(--line); border-radius: 6px; padding: 0.4rem 0.6rem; }
    .facts dt { color: var(--muted); font-size: 0.8rem; } .facts dd { margin: 0; font-size: 1.15rem; font-variant-numeric: tabular-nums; }
    .scroll { overflow-x: auto; background: white; border: 1px solid var(--line); border-radius: 6px; }
    table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
    th, td { text-align: left; padding: 0.3rem 0.55rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
    td.num, th.num { text-align: right; }
    td.detail { white-space: normal; min-width: 16rem; }
    .state-active { color: #116329; } .state-lost { color: #b3261e; font-weight: 600; } .state-left { color: var(--muted); }
    .charts { display: grid; grid-template-columns: 1fr; gap: 0.8rem; }
    @media (min-width: 900px) { .charts { grid-template-columns: 1fr 1fr; } }
    figure { margin: 0; background: white; border: 1px solid var(--line); border-radius: 6px; padding: 0.3rem; }
    figure svg { width: 100%; height: auto; display: block; }
    ol.ring { display: flex; flex-wrap: wrap; gap: 0.3rem 1.6rem; list-style-position: inside; padding: 0; margin: 0; }
    #connection { font-weight: 600; } .live { color: #116329; } .away { color: #b3261e; }
    button { font: inherit; padding: 0.25rem 0.7rem; border: 1px solid var(--line); border-radius: 6px; background: white; cursor: pointer; }
    pre { background: white; border: 1px solid var(--line); border-radius: 6px; padding: 0.6rem; overflow-x: auto; }
    """

    /// A table that scrolls sideways inside its box on a narrow window; cells are HTML already.
    public static func table(header: [String], rows: [[String]]) -> String {
        var html = "<div class=\"scroll\" tabindex=\"0\"><table>\n<thead><tr>"
        html += header.map { "<th scope=\"col\">\($0)</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for row in rows { html += "<tr>" + row.map { "<td>\($0)</td>" }.joined() + "</tr>\n" }
        return html + "</tbody></table></div>\n"
    }

    /// `text` safe in HTML text and in quoted attributes.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
