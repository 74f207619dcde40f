import Basics
import Coordination
import Foundation

/// `tributary report`'s page: one self-contained HTML file (plots inline as SVG, no external
/// assets) of a finished run folder — a multi-worker run (loss, throughput, bytes against the
/// link, utilisation, members, events, config), a single-process `train` run (loss and
/// throughput by step), or an experiment's folder (its report with every plot beside it).
public enum RunReportPage {
    /// Writes the page of `folder` to `destination` (default: the folder's `report.html`), atomically; returns where.
    @discardableResult
    public static func write(folder: URL, to destination: URL? = nil) throws -> URL {
        let url = destination ?? folder.appendingPathComponent("report.html")
        try Data(try render(folder: folder).utf8).write(to: url, options: .atomic)
        return url
    }

    /// The page for run folder `folder`, or an error saying why there is none.
    public static func render(folder: URL) throws -> String {
        let name = folder.standardizedFileURL.lastPathComponent
        let report = folder.appendingPathComponent("report.md")
        if let markdown = try read(report) {
            let plots = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".svg") }.sorted()
            var body = MarkdownHTML.render(markdown, headingOffset: 1)
            if !plots.isEmpty {
                body += "<h2>Plots</h2>\n<div class=\"charts\">\n"
                for plot in plots {
                    guard let svg = try read(folder.appendingPathComponent(plot)) else { continue }
                    body += "<figure tabindex=\"0\" aria-label=\"\(PageStyle.escape(plot))\">\(inlineSVG(svg))</figure>\n"
                }
                body += "</div>\n"
            }
            return page(title: name, body: body)
        }
        let (history, _) = try RunHistory.load(folder: folder)
        let config = try read(folder.appendingPathComponent("config.yaml"))
        if !history.reports.isEmpty { return page(title: name, body: clusterBody(history, config: config)) }
        let steps = try stepLines(folder.appendingPathComponent(RunHistory.reportsFile))
        if !steps.isEmpty { return page(title: name, body: trainBody(steps, config: config)) }
        throw RunReportError(path: folder.path, reason: "no run here: neither report.md nor round or step reports in metrics.jsonl; "
            + "give the folder a `tributary local`, `coordinator`, `train` or `experiment` run wrote")
    }

    private static func clusterBody(_ history: RunHistory, config: String?) -> String {
        let latest = history.latestReports
        let reports = latest.values.sorted { $0.name < $1.name }
        let times = history.reports.compactMap(\.receivedAt)
        let wall = times.isEmpty ? reports.map(\.elapsedSeconds).max() ?? 0 : times.max()! - times.min()!
        let tokens = reports.reduce(0) { $0 + $1.tokens }
        let sent = reports.reduce(0) { $0 + $1.bytesSent }
        let validation = history.reports.last { $0.report.validationLoss != nil }?.report.validationLoss
        let finished = !reports.isEmpty && reports.allSatisfy(\.finished)
        var body = facts([
            ("state", finished ? "finished" : "not finished (last reports below)"),
            ("workers", "\(reports.count)"),
            ("rounds", reports.map { "\($0.round + 1)" }.max().map { "\($0) / \(reports.map(\.rounds).max() ?? 0)" } ?? "–"),
            ("validation loss", validation.map { String(format: "%.4f", $0) } ?? "–"),
            ("tokens", formatCount(Double(tokens))),
            ("tokens/s (all)", wall > 0 ? formatCount(Double(tokens) / wall) : "–"),
            ("bytes sent (all)", formatBytes(sent)),
            ("wall time", String(format: "%.0f s", wall)),
        ])
        body += "<h2>Charts</h2>\n<div class=\"charts\">\n"
        for chart in RunCharts(history).all {
            body += "<figure tabindex=\"0\" aria-label=\"\(chart.name)\">\(inlineSVG(chart.svg))</figure>\n"
        }
        body += "</div>\n<h2>Workers</h2>\n"
        let rows = reports.map { MemberRow(name: $0.name, state: $0.finished ? "finished" : "stopped", report: $0) }
        body += table(["worker", "state", "speed alone (tok/s)", "tokens/s", "computing", "sent", "received", "round", "loss"], rows.map { m in
            [m.name, m.state, m.speed.map { formatCount($0) } ?? "–", m.tokensPerSecond.map { formatCount($0) } ?? "–",
             m.computeShare.map { String(format: "%.0f%%", 100 * $0) } ?? "–", formatBytes(m.bytesSent ?? 0),
             formatBytes(m.bytesReceived ?? 0), m.round.map { "\($0) / \(m.rounds ?? 0)" } ?? "–",
             m.loss.map { String(format: "%.4f", $0) } ?? "–"]
        })
        body += "<h2>Events</h2>\n"
        body += history.events.isEmpty ? "<p>No events were recorded (runs from before events.jsonl have none).</p>\n"
            : table(["time (UTC)", "event", "worker", "round", "what happened"], history.events.map { e in
                [utc(e.time), e.kind.rawValue, e.worker ?? "", e.round.map { "\($0 + 1)" } ?? "", e.detail]
            })
        if let config { body += "<h2>Config</h2>\n<pre>\(PageStyle.escape(config))</pre>\n" }
        return body
    }

    /// The fields of a `train` run's step lines that the page draws.
    struct StepLine: Decodable {
        var step: Int
        var loss: Double
        var tokensPerSecond: Double
        var elapsedSeconds: Double
        var validationLoss: Double?
    }

    private static func stepLines(_ url: URL) throws -> [StepLine] {
        guard let text = try read(url) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(StepLine.self, from: Data($0.utf8)) }
    }

    private static func trainBody(_ steps: [StepLine], config: String?) -> String {
        let last = steps.last!
        var body = facts([("steps", "\(last.step)"), ("training loss", String(format: "%.4f", last.loss)),
                          ("validation loss", steps.last { $0.validationLoss != nil }?.validationLoss.map { String(format: "%.4f", $0) } ?? "–"),
                          ("wall time", String(format: "%.0f s", last.elapsedSeconds))])
        let loss = SVGChart.lines(title: "loss", xLabel: "step", yLabel: "loss (nats/token)", series: [
            SVGChart.Series("train", RunCharts.thinned(steps.map { (Double($0.step), $0.loss) })),
            SVGChart.Series("validation", steps.compactMap { s in s.validationLoss.map { (Double(s.step), $0) } }, markers: true),
        ])
        let speed = SVGChart.lines(title: "throughput", xLabel: "step", yLabel: "tokens per second",
                                   series: [SVGChart.Series("train", RunCharts.thinned(steps.map { (Double($0.step), $0.tokensPerSecond) }))])
        body += "<h2>Charts</h2>\n<div class=\"charts\">\n<figure tabindex=\"0\" aria-label=\"loss\">\(inlineSVG(loss))</figure>\n"
        body += "<figure tabindex=\"0\" aria-label=\"throughput\">\(inlineSVG(speed))</figure>\n</div>\n"
        if let config { body += "<h2>Config</h2>\n<pre>\(PageStyle.escape(config))</pre>\n" }
        return body
    }

    private static func facts(_ items: [(String, String)]) -> String {
        "<dl class=\"facts\">\n" + items.map { "<div><dt>\(PageStyle.escape($0.0))</dt><dd>\(PageStyle.escape($0.1))</dd></div>\n" }.joined() + "</dl>\n"
    }

    private static func table(_ header: [String], _ rows: [[String]]) -> String {
        PageStyle.table(header: header.map(PageStyle.escape), rows: rows.map { $0.map(PageStyle.escape) })
    }

    /// An SVG file's markup without its XML prolog, to sit inside the page.
    private static func inlineSVG(_ svg: String) -> String {
        guard let start = svg.range(of: "<svg") else { return "" }
        return String(svg[start.lowerBound...])
    }

    private static func utc(_ time: Double) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: time))
    }

    /// A file's text, nil when it does not exist; files over 64 MiB are not ours to show.
    private static func read(_ url: URL) throws -> String? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path) else { return nil }
        if let size = attributes[.size] as? Int, size > 64 << 20 {
            throw RunReportError(path: url.path, reason: "\(size) bytes is more than a run folder's file holds; is it the right folder?")
        }
        do { return try String(contentsOf: url, encoding: .utf8) } catch {
            throw RunReportError(path: url.path, reason: error.localizedDescription)
        }
    }

    private static func page(title: String, body: String) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Tributary report: \(PageStyle.escape(title))</title>
        <style>
        \(PageStyle.css)
        </style>
        </head>
        <body>
        <header><h1>Tributary report: \(PageStyle.escape(title))</h1></header>
        <main>
        \(body)
        </main>
        </body>
        </html>

        """
    }
}

/// Why a run folder has no report.
public struct RunReportError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}
