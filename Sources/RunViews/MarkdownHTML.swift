import Foundation

/// The Markdown that Tributary's experiment reports are written in, as HTML: headings,
/// paragraphs, bullet lists, pipe tables, fenced code, and inline `code`, **bold** and links.
/// Only that subset (the reports are ours); anything else comes out as escaped text.
public enum MarkdownHTML {
    /// `headingOffset` demotes headings (1: `#` becomes `<h2>`), for a report inside a page that has its own title.
    public static func render(_ markdown: String, headingOffset: Int = 0) -> String {
        var html = ""
        var paragraph: [String] = [], list: [String] = [], table: [[String]] = []
        var code: [String]?
        func flush() {
            if !paragraph.isEmpty { html += "<p>" + inline(paragraph.joined(separator: " ")) + "</p>\n" }
            if !list.isEmpty { html += "<ul>\n" + list.map { "<li>" + inline($0) + "</li>\n" }.joined() + "</ul>\n" }
            if !table.isEmpty { html += renderTable(table) }
            (paragraph, list, table) = ([], [], [])
        }
        for raw in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if var lines = code {
                if line.hasPrefix("```") {
                    html += "<pre><code>" + PageStyle.escape(lines.joined(separator: "\n")) + "</code></pre>\n"
                    code = nil
                } else {
                    lines.append(line)
                    code = lines
                }
                continue
            }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("```") {
                flush()
                code = []
            } else if trimmed.isEmpty {
                flush()
            } else if let hashes = headingLevel(trimmed) {
                flush()
                let text = trimmed.dropFirst(hashes).trimmingCharacters(in: .whitespaces), level = min(6, hashes + headingOffset)
                html += "<h\(level)>" + inline(text) + "</h\(level)>\n"
            } else if trimmed.hasPrefix("- ") || trimmed.hasPrefix("* ") {
                if !paragraph.isEmpty || !table.isEmpty { flush() }
                list.append(String(trimmed.dropFirst(2)))
            } else if trimmed.hasPrefix("|") {
                if !paragraph.isEmpty || !list.isEmpty { flush() }
                table.append(cells(trimmed))
            } else if !list.isEmpty, raw.first == " " {
                list[list.count - 1] += " " + trimmed
            } else {
                if !list.isEmpty || !table.isEmpty { flush() }
                paragraph.append(trimmed)
            }
        }
        if let lines = code { html += "<pre><code>" + PageStyle.escape(lines.joined(separator: "\n")) + "</code></pre>\n" }
        flush()
        return html
    }

    private static func headingLevel(_ line: String) -> Int? {
        let hashes = line.prefix { $0 == "#" }.count
        return (1...6).contains(hashes) && line.dropFirst(hashes).first == " " ? hashes : nil
    }

    private static func cells(_ line: String) -> [String] {
        var body = line.dropFirst()
        if body.hasSuffix("|") { body = body.dropLast() }
        return body.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// The first row is the header; a `|---|` row after it is the separator.
    private static func renderTable(_ rows: [[String]]) -> String {
        let isSeparator = { (row: [String]) in row.allSatisfy { !$0.isEmpty && $0.allSatisfy { "-:".contains($0) } } }
        let body = rows.dropFirst().filter { !isSeparator($0) }
        return PageStyle.table(header: rows[0].map(inline), rows: body.map { $0.map(inline) })
    }

    /// Escapes `text`, then turns `code`, **bold** and [text](url) into HTML.
    static func inline(_ text: String) -> String {
        var out = "", rest = Substring(text)
        while let first = rest.firstIndex(where: { $0 == "`" || $0 == "*" || $0 == "[" }) {
            out += PageStyle.escape(String(rest[..<first]))
            let after = rest[first...]
            if after.hasPrefix("`"), let end = after.dropFirst().firstIndex(of: "`") {
                out += "<code>" + PageStyle.escape(String(after[after.index(after: first)..<end])) + "</code>"
                rest = after[after.index(after: end)...]
            } else if after.hasPrefix("**"), let end = after.dropFirst(2).range(of: "**") {
                out += "<strong>" + inline(String(after.dropFirst(2)[..<end.lowerBound])) + "</strong>"
                rest = after[end.upperBound...]
            } else if after.hasPrefix("["), let close = after.range(of: "]("), let end = after[close.upperBound...].firstIndex(of: ")") {
                let label = after[after.index(after: first)..<close.lowerBound], url = after[close.upperBound..<end]
                // Only links within the report or to the web; no scripts.
                let safe = url.hasPrefix("http://") || url.hasPrefix("https://") || !url.contains(":")
                out += safe ? "<a href=\"\(PageStyle.escape(String(url)))\">\(inline(String(label)))</a>" : PageStyle.escape(String(after[...end]))
                rest = after[after.index(after: end)...]
            } else {
                out += PageStyle.escape(String(after.prefix(1)))
                rest = after.dropFirst()
            }
        }
        return out + PageStyle.escape(String(rest))
    }
}
