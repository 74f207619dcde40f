import Foundation

/// Standalone SVG charts (800×450, white background, axes with five ticks, a legend): the one
/// chart writer for run folders' loss curves and experiment reports.
public enum SVGChart {
    public static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]

    /// One line of a chart: its name in the legend, its points, and whether they get dots.
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public var markers: Bool

        public init(_ name: String, _ points: [(x: Double, y: Double)], markers: Bool = false) {
            self.name = name
            self.points = points
            self.markers = markers
        }
    }

    /// Lines over a shared x axis; non-finite points are left out. The y range gets 5% of room.
    public static func lines(title: String, xLabel: String, yLabel: String, series: [Series]) -> String {
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        guard !all.isEmpty else { return frame(title: title, body: axes(xLabel: xLabel, yLabel: yLabel)) }
        let x0 = all.map(\.x).min()!, xMax = all.map(\.x).max()!
        let x1 = xMax > x0 ? xMax : x0 + 1
        var (y0, y1) = (all.map(\.y).min()!, all.map(\.y).max()!)
        if y1 - y0 < 1e-6 { (y0, y1) = (y0 - 0.5, y1 + 0.5) }
        let pad = (y1 - y0) * 0.05
        (y0, y1) = (y0 - pad, y1 + pad)
        func px(_ x: Double) -> Double { 70 + (x - x0) / (x1 - x0) * 660 }
        func py(_ y: Double) -> Double { 390 - (y - y0) / (y1 - y0) * 330 }
        var body = axes(xLabel: xLabel, yLabel: yLabel)
        for i in 0...4 {
            let y = y0 + (y1 - y0) * Double(i) / 4, x = x0 + (x1 - x0) * Double(i) / 4
            body += "<line x1=\"70\" y1=\(quoted(py(y))) x2=\"730\" y2=\(quoted(py(y))) stroke=\"#ddd\"/>\n"
            body += "<text x=\"64\" y=\(quoted(py(y) + 4)) text-anchor=\"end\" font-size=\"11\">\(String(format: "%.3f", y))</text>\n"
            body += "<text x=\(quoted(px(x))) y=\"406\" text-anchor=\"middle\" font-size=\"11\">\(tick(x, span: x1 - x0))</text>\n"
        }
        for (i, line) in series.enumerated() {
            let color = colors[i % colors.count]
            let points = line.points.filter { $0.x.isFinite && $0.y.isFinite }
            let path = points.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }.joined(separator: " ")
            body += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            if line.markers {
                for p in points { body += "<circle cx=\(quoted(px(p.x))) cy=\(quoted(py(p.y))) r=\"3\" fill=\"\(color)\"/>\n" }
            }
            body += "<line x1=\"580\" y1=\"\(76 + 16 * i)\" x2=\"596\" y2=\"\(76 + 16 * i)\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            body += "<text x=\"600\" y=\"\(80 + 16 * i)\" fill=\"\(color)\" font-size=\"12\">\(escape(line.name))</text>\n"
        }
        return frame(title: title, body: body)
    }

    /// Bars on a log scale, one per named value.
    public static func logBars(title: String, values: [(String, Double)]) -> String {
        guard !values.isEmpty else { return frame(title: title, body: "") }
        let logs = values.map { log10(max($0.1, 1)) }
        let top = ceil(logs.max()!), bottom = floor(logs.min()!) - 1
        var body = axes(xLabel: "", yLabel: "bytes (log scale)")
        for e in stride(from: bottom, through: top, by: 1) {
            let y = 390 - (e - bottom) / (top - bottom) * 330
            body += "<text x=\"64\" y=\"\(y + 4)\" text-anchor=\"end\" font-size=\"11\">1e\(Int(e))</text>\n"
        }
        let width = 600.0 / Double(values.count)
        for (i, (name, _)) in values.enumerated() {
            let h = (logs[i] - bottom) / (top - bottom) * 330
            let x = 90 + Double(i) * width
            body += "<rect x=\"\(x)\" y=\"\(390 - h)\" width=\"\(width * 0.7)\" height=\"\(h)\" fill=\"\(colors[i % colors.count])\"/>\n"
            body += "<text x=\"\(x + width * 0.35)\" y=\"406\" text-anchor=\"middle\" font-size=\"11\">\(escape(name))</text>\n"
        }
        return frame(title: title, body: body)
    }

    /// An x tick: whole numbers with separators for wide axes, decimals for narrow ones.
    private static func tick(_ x: Double, span: Double) -> String {
        span >= 10 ? formatCount(x) : String(format: span >= 1 ? "%.1f" : "%.2f", x)
    }

    private static func quoted(_ v: Double) -> String { "\"" + String(format: "%.1f", v) + "\"" }

    private static func axes(xLabel: String, yLabel: String) -> String {
        "<line x1=\"70\" y1=\"390\" x2=\"730\" y2=\"390\" stroke=\"black\"/>\n<line x1=\"70\" y1=\"60\" x2=\"70\" y2=\"390\" stroke=\"black\"/>\n"
            + "<text x=\"400\" y=\"435\" text-anchor=\"middle\" font-size=\"12\">\(escape(xLabel))</text>\n"
            + "<text x=\"18\" y=\"225\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 18 225)\">\(escape(yLabel))</text>\n"
    }

    private static func frame(title: String, body: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"450\" viewBox=\"0 0 800 450\" font-family=\"sans-serif\">\n"
            + "<rect width=\"800\" height=\"450\" fill=\"white\"/>\n<text x=\"400\" y=\"30\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>\n"
            + body + "</svg>\n"
    }

    /// `s` safe inside SVG text.
    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
